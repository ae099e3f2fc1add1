import QuantumCore
import QuantumCrypto
import QuantumDevice

/// What the data path decides for each packet, apart from moving packets in and out
/// of the kernel: route lookup, sealing, opening, the inner-address checks and the
/// signals to the control thread. A `Worker` owns one and calls it per packet; tests
/// call it directly with buffers and a fake clock.
///
/// Owned by one thread (it uses AEAD slot `worker` of every session). Allocates
/// nothing, takes no lock and logs nothing, except for the rare hand-offs to the
/// control thread (staged packets, handshake messages).
final class PacketPath: @unchecked Sendable {
    // @unchecked: `lastUnknownSessionHint` is touched only by the owning thread;
    // other threads only read `counters`, which are atomics.

    /// The worker (and AEAD slot) this path serves.
    let worker: Int
    let counters = CounterSet<WorkerCounter>()
    private let localIP: IPv4Address
    private let control: ControlPlane
    /// When this path last told the control thread about a packet for an unknown session.
    private var lastUnknownSessionHint: UInt64 = 0
    /// At most one such hint a second per worker: the packets are unauthenticated.
    private static let unknownSessionHintInterval: UInt64 = 1_000_000_000

    init(worker: Int, localIP: IPv4Address, control: ControlPlane) {
        self.worker = worker
        self.localIP = localIP
        self.control = control
    }

    /// Seals one packet read from the TUN device. The packet is at
    /// `buffer + WireFormat.transportHeaderSize`, with room for the tag after it.
    /// - Returns: the message length and where to send it, or nil when the packet was
    ///   staged for a handshake or dropped (and counted).
    @inline(__always)
    func seal(_ buffer: UnsafeMutableRawPointer, length: Int, table: ForwardingTable,
              now: UInt64) -> (length: Int, endpoint: UDPEndpoint)? {
        let packet = UnsafeRawBufferPointer(start: buffer + WireFormat.transportHeaderSize, count: length)
        guard let destination = IPPacket.ipv4Destination(packet), let route = table.route(to: destination) else {
            counters.add(.dropNoRoute)
            return nil
        }
        guard let session = route.session, let endpoint = route.endpoint else {
            stage(packet, for: route)
            return nil
        }
        if session.shouldRekey(now: now) { requestHandshake(route) }
        guard let total = session.seal(buffer, payloadLength: length, worker: worker, flags: 0) else {
            stage(packet, for: route)
            return nil
        }
        route.signals.lastDataSent.store(now, ordering: .relaxed)
        counters.add(.txBytes, UInt64(length))
        return (total, endpoint)
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
            control.post(.handshakeWanted(route.privateIP, route.signals))
        }
    }

    /// Handles one datagram received from `source`: handshake messages go to the
    /// control thread, transport messages are opened in place.
    /// - Returns: the inner packet to write to the TUN device (inside `message`), or
    ///   nil when there is none (keepalive, handshake, or dropped and counted).
    @inline(__always)
    func open(_ message: UnsafeMutableRawBufferPointer, from source: UDPEndpoint, table: ForwardingTable,
              now: UInt64) -> UnsafeRawBufferPointer? {
        guard !message.isEmpty else {
            counters.add(.dropMalformed)
            return nil
        }
        switch message[0] {
        case MessageType.transport.rawValue:
            return openTransport(message, from: source, table: table, now: now)
        case MessageType.initiation.rawValue, MessageType.response.rawValue:
            if !control.post(.handshake(Array(UnsafeRawBufferPointer(message)), from: source, worker: worker)) {
                counters.add(.dropHandshakeBacklog)
            }
        default:
            counters.add(.dropMalformed)
        }
        return nil
    }

    @inline(__always)
    private func openTransport(_ message: UnsafeMutableRawBufferPointer, from source: UDPEndpoint,
                               table: ForwardingTable, now: UInt64) -> UnsafeRawBufferPointer? {
        guard let receiver = TransportHeader.receiverIndex(UnsafeRawBufferPointer(message)) else {
            counters.add(.dropMalformed)
            return nil
        }
        guard let inbound = table.inbound[receiver] else {
            counters.add(.dropNoSession)
            // Typically a peer that still uses a session we lost by restarting: offer a new one.
            if now &- lastUnknownSessionHint >= PacketPath.unknownSessionHintInterval {
                lastUnknownSessionHint = now
                control.post(.unknownSession(from: source))
            }
            return nil
        }
        switch inbound.session.open(message, worker: worker) {
        case .payload(let offset, let length):
            inbound.signals.lastReceived.store(now, ordering: .relaxed)
            if !inbound.confirmed && PeerSignals.raise(inbound.signals.confirmPending) {
                control.post(.sessionConfirmed(inbound.session.localIndex, inbound.signals))
            }
            if inbound.endpoint != source && PeerSignals.raise(inbound.signals.roamPending) {
                control.post(.roamed(inbound.session.localIndex, to: source, inbound.signals))
            }
            guard length > 0 else {
                counters.add(.keepalivesReceived)
                return nil
            }
            inbound.signals.lastDataReceived.store(now, ordering: .relaxed)
            let packet = UnsafeRawBufferPointer(start: message.baseAddress! + offset, count: length)
            guard let source = IPPacket.ipv4Source(packet), let destination = IPPacket.ipv4Destination(packet) else {
                counters.add(.dropMalformed)
                return nil
            }
            guard table.accepts(source: source, from: inbound) else {
                counters.add(.dropSpoofed)
                return nil
            }
            guard table.accepts(destination: destination, localIP: localIP) else {
                counters.add(.dropDestination)
                return nil
            }
            return packet
        case .replayed:
            counters.add(.dropReplay)
        case .authenticationFailed:
            counters.add(.dropAuth)
        case .malformed:
            counters.add(.dropMalformed)
        case .exhausted:
            counters.add(.dropNoSession)
        }
        return nil
    }
}
