import CQuantumLinux
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
// With offloads (a TUN queue with a virtio-net header), a TUN read may return a 64 KB TCP
// super-packet: it lands in the worker's read buffer and TCPSegmentation writes each
// segment straight into its outgoing slot, at the offset sealing expects. On the way in,
// opened packets go through a TCPCoalescer, which joins consecutive segments of a flow
// into one TUN write; everything is written behind a virtio-net header.
//
// The per-packet decisions live in PacketPath; this file moves the batches.
// A worker drains both descriptors in turns of one batch each and sleeps in
// poll(2) only when both are empty.

/// One data-path worker: a TUN queue, a UDP socket and the thread that serves them.
final class Worker: @unchecked Sendable {
    // @unchecked: every mutable field below is touched only by the worker's own
    // thread (`run`); other threads only read `counters`, which are atomics.

    /// Datagrams moved per batch (and TUN reads per turn).
    static let batchSize = 32
    /// Outgoing slots with offloads: one 64 KB super-packet fills about 48.
    static let offloadBatchSize = Int(QT_MAX_BATCH)
    /// Bytes of the read buffer for super-packets: the virtio-net header and the largest IPv4 packet.
    static let superPacketCapacity = VirtioNetHeader.size + 65_535
    /// How long TUN reads may fail on every try before the device counts as broken.
    static let tunFailureTime: UInt64 = 1_000_000_000

    let index: Int
    let tun: PacketQueue
    let socket: UDPSocket
    let path: PacketPath
    private let tables: ForwardingTableHolder
    private let poller: Poller
    private let deviceName: String
    private let onFatalError: @Sendable (String) -> Void
    private let running: Atomic<Bool>
    let outgoing: DatagramBatch
    let incoming: DatagramBatch
    let maximumPacket: Int
    var table = ForwardingTable.empty
    private var tableGeneration: UInt64 = .max
    /// When the current run of failed TUN reads began (0: the last read did not fail).
    var tunFailingSince: UInt64 = 0
    /// Where super-packets are read (queues with a virtio-net header only; its pages are
    /// touched only as far as packets reach).
    let superPacket: UnsafeMutableRawPointer?
    /// Joins received TCP segments into super-packets (queues that coalesce only).
    let coalescer: TCPCoalescer?
    /// An all-zero virtio-net header, for packets written as they are.
    let plainHeader: UnsafeMutableRawPointer
    /// Whether the socket joins received datagrams (UDP GRO): slots then hold up to 64 KB.
    let receiveOffload: Bool
    /// Whether segments of a super-packet are sent as one train per slot (UDP GSO).
    let segmentationOffload: Bool

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
        let packetSlot = (maximumPacket + WireFormat.relayHeaderSize + WireFormat.transportOverhead + 63) & ~63
        // With offloads, a slot holds a train of sealed segments (UDP GSO) or what UDP GRO
        // joined; the batches' pages cost memory only once a train or a burst reaches them.
        let largeSlot = (WireFormat.relayHeaderSize + UDPSocket.maximumSegmentedLength + 63) & ~63
        if tun.coalescing {
            receiveOffload = socket.enableReceiveOffload()
            segmentationOffload = socket.sendOffload
        } else {
            // Also undoes what a predecessor set on a handed-over socket.
            _ = socket.disableReceiveOffload()
            socket.disableSendOffload()
            receiveOffload = false
            segmentationOffload = false
        }
        outgoing = DatagramBatch(capacity: tun.virtioHeader ? Worker.offloadBatchSize : Worker.batchSize,
                                 bufferSize: segmentationOffload ? largeSlot : packetSlot)
        incoming = DatagramBatch(capacity: Worker.batchSize, bufferSize: receiveOffload ? largeSlot : packetSlot)
        superPacket = tun.virtioHeader ? .allocate(byteCount: Worker.superPacketCapacity, alignment: 64) : nil
        coalescer = tun.coalescing ? TCPCoalescer() : nil
        plainHeader = .allocate(byteCount: VirtioNetHeader.size, alignment: 8)
        plainHeader.initializeMemory(as: UInt8.self, repeating: 0, count: VirtioNetHeader.size)
    }

    deinit {
        superPacket?.deallocate()
        plainHeader.deallocate()
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
        if let superPacket { return forwardSuperPackets(now: now, readingInto: superPacket) }
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
        sendOutgoing(ready, datagrams: ready)
        return read
    }

    /// Sends the first `count` prepared outgoing slots (`datagrams` datagrams in all) and
    /// counts what the kernel refused. Which slots it refused is not reported: the last
    /// ones are counted.
    func sendOutgoing(_ count: Int, datagrams: Int) {
        guard count > 0 else { return }
        let result = socket.send(outgoing, count: count)
        counters.add(.txPackets, UInt64(result.datagramsAccepted))
        if result.fallbacks > 0 { counters.add(.udpSegmentationFallbacks, UInt64(result.fallbacks)) }
        let refused = datagrams - result.datagramsAccepted
        guard refused > 0 else { return }
        var bytes = 0
        for slot in result.accepted..<count {
            let datagram = outgoing.slots[slot], size = Int(datagram.segment_size)
            let segments = size == 0 ? 1 : (Int(datagram.length) + size - 1) / size
            bytes += Int(datagram.length) - segments * WireFormat.transportOverhead
        }
        counters.add(.dropSendFailed, UInt64(refused))
        counters.add(.txDroppedPackets, UInt64(refused))
        counters.add(.txDroppedBytes, UInt64(max(bytes, 0)))
    }

    /// Counts a failed TUN read, and stops the worker when the queue is gone
    /// (EBADF, EIO, ENODEV, EFAULT) or reads have failed for `tunFailureTime`.
    func tunReadFailed(errno code: Int32, now: UInt64) {
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
            let source = incoming.endpoint(slot), length = Int(datagram.length)
            let size = datagram.segment_size == 0 ? length : Int(datagram.segment_size)
            // One datagram, or several the kernel joined (UDP GRO): each is one message.
            var offset = 0
            repeat {
                deliver(UnsafeMutableRawBufferPointer(start: datagram.buffer + offset, count: min(size, length - offset)),
                        from: source, now: now)
                offset += size
            } while offset < length
        }
        coalescer?.flush { header, packet, segments in writeToTun(header: header, packet, segments: segments) }
        return count
    }

    /// Handles one received datagram: forwards a relay envelope for another node, or opens
    /// it and writes its packet to the TUN queue (through the coalescer when there is one).
    private func deliver(_ message: UnsafeMutableRawBufferPointer, from source: UDPEndpoint, now: UInt64) {
        if message.count > 0, message[0] == MessageType.relayEnvelope.rawValue,
           let next = path.relayTarget(UnsafeRawBufferPointer(message), from: source, table: table) {
            // Forwarded as it came, from this worker's socket (sendto, one per envelope).
            if !socket.send(UnsafeRawBufferPointer(message), to: next) {
                path.dropIncoming(.dropSendFailed, bytes: message.count)
            }
            return
        }
        guard let packet = path.open(message, from: source, table: table, now: now) else { return }
        if let coalescer {
            coalescer.add(packet) { header, packet, segments in writeToTun(header: header, packet, segments: segments) }
        } else if tun.virtioHeader {
            writeToTun(header: plainHeader, packet, segments: 1)
        } else if tun.write(packet.baseAddress!, length: packet.count) == 0 {
            counters.add(.rxPackets)
            counters.add(.rxBytes, UInt64(packet.count))
        } else {
            // ENOBUFS/EAGAIN when the kernel is full, anything else when the device is
            // broken, which the read side notices and reports.
            path.dropIncoming(.dropTunWrite, bytes: packet.count)
        }
    }

    /// Writes a packet behind its virtio-net header and counts the `segments` received
    /// packets it carries (their bytes: the packet's, plus the headers the joined ones had).
    func writeToTun(header: UnsafeRawPointer, _ packet: UnsafeRawBufferPointer, segments: Int) {
        let bytes = UInt64(packet.count + (segments - 1) * Int(VirtioNetHeader(from: header).headerLength))
        if tun.write(header: header, packet: packet) == 0 {
            counters.add(.rxPackets, UInt64(segments))
            counters.add(.rxBytes, bytes)
            if segments > 1 { counters.add(.tunCoalescedWrites) }
        } else {
            counters.add(.dropTunWrite, UInt64(segments))
            counters.add(.rxDroppedPackets, UInt64(segments))
            counters.add(.rxDroppedBytes, bytes)
        }
    }
}
