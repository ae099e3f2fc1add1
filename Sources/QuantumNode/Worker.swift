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
//              (packet lands WireFormat.transportHeaderSize bytes into a slot buffer,
//               so the header and tag are written around it without a copy)
//   incoming:  UDP ──recvmmsg──▶ type? ─ transport ─▶ index lookup ─▶ replay check
//                                  │                  ─▶ open in place ─▶ inner source
//                                  │                     is the peer's? ─▶ write TUN
//                                  └─ handshake ─▶ copied to the control thread
//
// A worker drains both descriptors in turns of one batch each and sleeps in
// poll(2) only when both are empty.

/// One data-path worker: a TUN queue, a UDP socket and the thread that serves them.
final class Worker: @unchecked Sendable {
    // @unchecked: every mutable field below is touched only by the worker's own
    // thread (`run`); other threads only read `counters`, which are atomics.

    /// Datagrams moved per batch.
    static let batchSize = 32

    let index: Int
    let tun: PacketQueue
    let socket: UDPSocket
    let counters = CounterSet<WorkerCounter>()
    private let tables: ForwardingTableHolder
    private let control: ControlPlane
    private let poller: Poller
    private let running: Atomic<Bool>
    private let outgoing: DatagramBatch
    private let incoming: DatagramBatch
    private let maximumPacket: Int
    private var table = ForwardingTable.empty
    private var tableGeneration: UInt64 = .max
    /// When this worker last told the control thread about a packet for an unknown session.
    private var lastUnknownSessionHint: UInt64 = 0
    /// At most one such hint a second per worker: the packets are unauthenticated.
    private static let unknownSessionHintInterval: UInt64 = 1_000_000_000

    init(index: Int, tun: PacketQueue, socket: UDPSocket, mtu: Int, tables: ForwardingTableHolder,
         control: ControlPlane, poller: Poller) {
        self.index = index
        self.tun = tun
        self.socket = socket
        self.tables = tables
        self.control = control
        self.poller = poller
        self.running = Atomic<Bool>(true)
        // Room for the largest packet the device may hand us plus the transport framing.
        maximumPacket = max(mtu, 1280)
        let bufferSize = (maximumPacket + WireFormat.transportOverhead + 63) & ~63
        outgoing = DatagramBatch(capacity: Worker.batchSize, bufferSize: bufferSize)
        incoming = DatagramBatch(capacity: Worker.batchSize, bufferSize: bufferSize)
    }

    /// Asks the worker to finish its current batch and return from `run`.
    func stop() {
        running.store(false, ordering: .relaxed)
        poller.wake()
    }

    /// The worker loop; returns after `stop()`.
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
        let header = WireFormat.transportHeaderSize
        while read < Worker.batchSize {
            let buffer = outgoing.buffer(ready)
            let length = tun.read(into: buffer + header, capacity: maximumPacket)
            guard length > 0 else { break }
            read += 1
            let packet = UnsafeRawBufferPointer(start: buffer + header, count: length)
            guard let destination = IPPacket.ipv4Destination(packet), let route = table.routes[destination] else {
                counters.add(.dropNoRoute)
                continue
            }
            guard let session = route.session, let endpoint = route.endpoint else {
                stage(packet, for: route)
                continue
            }
            if session.shouldRekey(now: now) { requestHandshake(route) }
            guard let total = session.seal(buffer, payloadLength: length, worker: index, flags: 0) else {
                stage(packet, for: route)
                continue
            }
            route.signals.lastDataSent.store(now, ordering: .relaxed)
            outgoing.prepare(ready, length: total, to: endpoint)
            counters.add(.txBytes, UInt64(length))
            ready += 1
        }
        if ready > 0 {
            let accepted = max(socket.send(outgoing, count: ready), 0)
            counters.add(.txPackets, UInt64(accepted))
            if accepted < ready { counters.add(.dropSendFailed, UInt64(ready - accepted)) }
        }
        return read
    }

    /// Hands a packet for a peer without a usable session to the control thread, which
    /// sends it when the handshake completes (the only copy on this path, and it is
    /// off the steady state); past `ControlPlane.stagedPacketLimit` it is dropped.
    private func stage(_ packet: UnsafeRawBufferPointer, for route: ForwardingTable.Route) {
        if route.signals.staged.load(ordering: .relaxed) < ControlPlane.stagedPacketLimit {
            route.signals.staged.wrappingAdd(1, ordering: .relaxed)
            control.post(.stage(route.privateIP, Array(packet)))
        } else {
            counters.add(.dropNoSession)
        }
        requestHandshake(route)
    }

    @inline(__always)
    private func requestHandshake(_ route: ForwardingTable.Route) {
        if PeerSignals.raise(route.signals.handshakeWanted) {
            control.post(.handshakeWanted(route.privateIP))
        }
    }

    /// Receives up to one batch from the UDP socket and delivers it. Returns datagrams received.
    private func deliverFromNetwork(now: UInt64) -> Int {
        let count = socket.receive(incoming, count: Worker.batchSize)
        guard count > 0 else { return 0 }
        for slot in 0..<count {
            let datagram = incoming.slots[slot]
            let message = UnsafeMutableRawBufferPointer(start: datagram.buffer, count: Int(datagram.length))
            guard datagram.truncated == 0, !message.isEmpty else {
                counters.add(.dropMalformed)
                continue
            }
            switch message[0] {
            case MessageType.transport.rawValue:
                deliverTransport(message, from: slot, now: now)
            case MessageType.initiation.rawValue, MessageType.response.rawValue:
                if !control.post(.handshake(Array(UnsafeRawBufferPointer(message)), from: incoming.endpoint(slot), worker: index)) {
                    counters.add(.dropHandshakeBacklog)
                }
            default:
                counters.add(.dropMalformed)
            }
        }
        return count
    }

    @inline(__always)
    private func deliverTransport(_ message: UnsafeMutableRawBufferPointer, from slot: Int, now: UInt64) {
        guard let receiver = TransportHeader.receiverIndex(UnsafeRawBufferPointer(message)) else {
            counters.add(.dropMalformed)
            return
        }
        guard let inbound = table.inbound[receiver] else {
            counters.add(.dropNoSession)
            // Typically a peer that still uses a session we lost by restarting: offer a new one.
            if now &- lastUnknownSessionHint >= Worker.unknownSessionHintInterval {
                lastUnknownSessionHint = now
                control.post(.unknownSession(from: incoming.endpoint(slot)))
            }
            return
        }
        switch inbound.session.open(message, worker: index) {
        case .payload(let offset, let length):
            inbound.signals.lastReceived.store(now, ordering: .relaxed)
            if !inbound.confirmed && PeerSignals.raise(inbound.signals.confirmPending) {
                control.post(.sessionConfirmed(inbound.session.localIndex))
            }
            if inbound.endpoint != incoming.endpoint(slot) && PeerSignals.raise(inbound.signals.roamPending) {
                control.post(.roamed(inbound.session.localIndex, to: incoming.endpoint(slot)))
            }
            guard length > 0 else {
                counters.add(.keepalivesReceived)
                return
            }
            inbound.signals.lastDataReceived.store(now, ordering: .relaxed)
            let packet = UnsafeRawBufferPointer(start: message.baseAddress! + offset, count: length)
            guard let source = IPPacket.ipv4Source(packet) else {
                counters.add(.dropMalformed)
                return
            }
            guard source == inbound.privateIP else {
                counters.add(.dropSpoofed)
                return
            }
            if tun.write(packet.baseAddress!, length: length) {
                counters.add(.rxPackets)
                counters.add(.rxBytes, UInt64(length))
            } else {
                counters.add(.dropTunWrite)
            }
        case .replayed:
            counters.add(.dropReplay)
        case .authenticationFailed:
            counters.add(.dropAuth)
        case .malformed:
            counters.add(.dropMalformed)
        case .exhausted:
            counters.add(.dropNoSession)
        }
    }
}
