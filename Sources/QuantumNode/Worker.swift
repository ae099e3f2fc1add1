import Glibc
import QuantumCore
import QuantumCrypto
import QuantumDevice
import Synchronization

// The data path.
//
// Threading model: per-queue run to completion. A node runs N workers, each on
// its own thread; worker i owns TUN queue i and UDP socket i (all sockets share
// the port through SO_REUSEPORT) and two preallocated batches. Nothing on this
// path is shared between workers except the read-only ForwardingTable snapshot,
// the sessions (whose per-worker AEAD contexts are indexed by worker) and a few
// relaxed atomics. A worker never blocks on another thread and never allocates,
// logs or hops to async code per packet.
//
//   outgoing:  TUN queue ──read──▶ dst lookup ──▶ seal in place ──▶ sendmmsg ──▶ UDP
//              (packet lands relayHeaderSize + transportHeaderSize bytes into a slot buffer,
//               so the header and tag — and a relay envelope — are written around it without a copy)
//   incoming:  UDP ──recvmmsg──▶ type? ─ transport ─▶ index lookup ─▶ replay check
//                                  │                  ─▶ open in place ─▶ inner source is
//                                  │                     the peer's, destination ours? ─▶ write TUN
//                                  ├─ handshake ─▶ copied to the control thread
//                                  └─ relay envelope ─▶ for another node (--relay): checked, sent on unchanged
//                                                     ─▶ for this node: its inner message as above
//
// The per-packet decisions live in PacketPath; this file moves the batches.
// A worker drains both descriptors in turns of one batch each and sleeps in
// poll(2) only when both are empty.

/// One data-path worker: a TUN queue, a UDP socket and the thread that serves them.
final class Worker: @unchecked Sendable {
    // @unchecked: every mutable field below is touched only by the worker's own
    // thread (`run`); other threads only read `counters`, which are atomics.

    /// Datagrams moved per batch.
    static let batchSize = 32
    /// How long TUN reads may fail on every try before the device counts as broken.
    static let tunFailureTime: UInt64 = 1_000_000_000

    let index: Int
    let tun: PacketQueue
    let socket: UDPSocket
    private let path: PacketPath
    private let tables: ForwardingTableHolder
    private let poller: Poller
    private let deviceName: String
    private let onFatalError: @Sendable (String) -> Void
    private let running: Atomic<Bool>
    private let outgoing: DatagramBatch
    private let incoming: DatagramBatch
    private let maximumPacket: Int
    private var table = ForwardingTable.empty
    private var tableGeneration: UInt64 = .max
    /// When the current run of failed TUN reads began (0: the last read did not fail).
    private var tunFailingSince: UInt64 = 0

    var counters: CounterSet<WorkerCounter> { path.counters }

    /// - Parameters:
    ///   - deviceName: the TUN device's name, for the fatal-error message.
    ///   - onFatalError: called once, from the worker's thread, when the TUN queue is
    ///     broken for good; the worker has stopped by then.
    init(index: Int, tun: PacketQueue, socket: UDPSocket, mtu: Int, tables: ForwardingTableHolder,
         path: PacketPath, poller: Poller, deviceName: String, onFatalError: @escaping @Sendable (String) -> Void) {
        self.index = index
        self.tun = tun
        self.socket = socket
        self.tables = tables
        self.path = path
        self.poller = poller
        self.deviceName = deviceName
        self.onFatalError = onFatalError
        self.running = Atomic<Bool>(true)
        maximumPacket = Worker.maximumPacket(mtu: mtu)
        let bufferSize = (maximumPacket + WireFormat.relayHeaderSize + WireFormat.transportOverhead + 63) & ~63
        outgoing = DatagramBatch(capacity: Worker.batchSize, bufferSize: bufferSize)
        incoming = DatagramBatch(capacity: Worker.batchSize, bufferSize: bufferSize)
    }

    /// The largest inner packet a worker handles: room for what the device may hand us
    /// (the transport framing comes on top).
    static func maximumPacket(mtu: Int) -> Int {
        max(mtu, 1280)
    }

    /// Asks the worker to finish its current batch and return from `run`.
    func stop() {
        running.store(false, ordering: .relaxed)
        poller.wake()
    }

    /// Lets `run()` loop again after `stop()` (call before starting its thread).
    func prepareToResume() {
        poller.clearWake()
        running.store(true, ordering: .relaxed)
    }

    /// The worker loop; returns after `stop()` or a fatal TUN error.
    func run() {
        while running.load(ordering: .relaxed) {
            refreshTable()
            let now = monotonicNanoseconds()
            let sent = forwardFromTun(now: now)
            let received = deliverFromNetwork(now: now)
            if sent == 0 && received == 0 {
                _ = poller.wait((tun.fileDescriptor, socket.fileDescriptor), timeoutMilliseconds: 1000)
            }
        }
    }

    @inline(__always)
    private func refreshTable() {
        guard tables.generation.load(ordering: .relaxed) != tableGeneration else { return }
        (table, tableGeneration) = tables.load()
    }

    /// Reads up to one batch from the TUN queue, seals and sends it. Returns packets read.
    private func forwardFromTun(now: UInt64) -> Int {
        var ready = 0
        var read = 0
        while read < Worker.batchSize {
            let buffer = outgoing.buffer(ready) + WireFormat.relayHeaderSize
            let length = tun.read(into: buffer + WireFormat.transportHeaderSize, capacity: maximumPacket)
            guard length > 0 else {
                if length < 0 { tunReadFailed(errno: Int32(-length), now: now) }
                break
            }
            tunFailingSince = 0
            read += 1
            guard let (start, total, endpoint) = path.seal(buffer, length: length, table: table, now: now) else { continue }
            outgoing.prepare(ready, offset: start - outgoing.buffer(ready), length: total, to: endpoint)
            ready += 1
        }
        if ready > 0 {
            let accepted = socket.send(outgoing, count: ready).accepted
            counters.add(.txPackets, UInt64(accepted))
            for slot in accepted..<ready {
                path.dropOutgoing(.dropSendFailed, bytes: Int(outgoing.slots[slot].length) - WireFormat.transportOverhead)
            }
        }
        return read
    }

    /// Counts a failed TUN read, and stops the worker when the queue is gone
    /// (EBADF, EIO, ENODEV, EFAULT) or reads have failed for `tunFailureTime`.
    private func tunReadFailed(errno code: Int32, now: UInt64) {
        counters.add(.tunReadErrors)
        if tunFailingSince == 0 { tunFailingSince = now }
        let gone = code == EBADF || code == EIO || code == ENODEV || code == EFAULT
        guard gone || now &- tunFailingSince >= Worker.tunFailureTime else { return }
        running.store(false, ordering: .relaxed)
        onFatalError("\(SystemError("read from TUN device \(deviceName) (queue \(index))", code: code))")
    }

    /// Receives up to one batch from the UDP socket and delivers it. Returns datagrams received.
    private func deliverFromNetwork(now: UInt64) -> Int {
        let count = socket.receive(incoming, count: Worker.batchSize)
        guard count > 0 else { return 0 }
        // The batch may answer a handshake whose table was published after the loop's refresh.
        refreshTable()
        for slot in 0..<count {
            let datagram = incoming.slots[slot]
            guard datagram.truncated == 0 else {
                path.dropIncoming(.dropMalformed, bytes: Int(datagram.length))
                continue
            }
            let message = UnsafeMutableRawBufferPointer(start: datagram.buffer, count: Int(datagram.length))
            if message.count > 0, message[0] == MessageType.relayEnvelope.rawValue,
               let next = path.relayTarget(UnsafeRawBufferPointer(message), from: incoming.endpoint(slot), table: table) {
                // Forwarded as it came, from this worker's socket (sendto, one per envelope).
                if !socket.send(UnsafeRawBufferPointer(message), to: next) {
                    path.dropIncoming(.dropSendFailed, bytes: message.count)
                }
                continue
            }
            guard let packet = path.open(message, from: incoming.endpoint(slot), table: table, now: now) else { continue }
            if tun.write(packet.baseAddress!, length: packet.count) == 0 {
                counters.add(.rxPackets)
                counters.add(.rxBytes, UInt64(packet.count))
            } else {
                // ENOBUFS/EAGAIN when the kernel is full, anything else when the device is
                // broken, which the read side notices and reports.
                path.dropIncoming(.dropTunWrite, bytes: packet.count)
            }
        }
        return count
    }
}
