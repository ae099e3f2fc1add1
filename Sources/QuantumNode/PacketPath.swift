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
/// control thread (staged packets, handshake messages). Under load, handshake messages
/// without a valid mac2 are answered with cookie replies here, allocating nothing.
final class PacketPath: @unchecked Sendable {
    // @unchecked: `lastUnknownSessionHint`, `cookies` and `cookieReply` are touched only by
    // the owning thread; other threads only read `counters`, which are atomics.

    /// The worker (and AEAD slot) this path serves.
    let worker: Int
    let counters = CounterSet<WorkerCounter>()
    let localIP: IPv4Address
    let control: ControlPlane
    /// LZ4 state and scratch buffers of this worker (compression plugin).
    private let compressor: PacketCompressor
    /// Size and mac1 checks that keep junk handshakes off the control thread's backlog.
    private let handshakeScreen: HandshakeScreen
    /// Checks mac2 and writes cookie replies while the node is under load.
    private let cookies: CookieResponder
    /// Where a cookie reply is built before it is sent (allocated once).
    private let cookieReply = UnsafeMutableRawBufferPointer.allocate(byteCount: WireFormat.cookieReplySize, alignment: 8)
    /// Messages this path answered with cookies in the current window: the flood the control
    /// thread no longer sees, which keeps the node under load while it lasts.
    private var cookieRate = HandshakeRate()
    /// When this path last told the control thread about a packet for an unknown session.
    private var lastUnknownSessionHint: UInt64 = 0
    /// At most one such hint a second per worker: the packets are unauthenticated.
    private static let unknownSessionHintInterval: UInt64 = 1_000_000_000

    /// - Parameter maximumPacket: the largest inner packet (`Worker.maximumPacket(mtu:)`),
    ///   which bounds what a compressed packet may decompress to.
    /// - Throws: `CryptoError` if OpenSSL cannot set up the cookie cipher.
    init(worker: Int, localIP: IPv4Address, control: ControlPlane, maximumPacket: Int) throws(CryptoError) {
        self.worker = worker
        self.localIP = localIP
        self.control = control
        compressor = PacketCompressor(maximumPacket: maximumPacket)
        handshakeScreen = HandshakeScreen(localPublicKey: control.localPublicKey)
        cookies = try CookieResponder(localPublicKey: control.localPublicKey, masterSecret: control.load.cookieSecret)
    }

    deinit {
        cookieReply.deallocate()
    }

    /// Seals one packet read from the TUN device. The packet is at
    /// `buffer + WireFormat.transportHeaderSize`, with room for the tag after it and
    /// `WireFormat.relayHeaderSize` bytes before `buffer` for a relay envelope.
    /// - Returns: where the datagram starts (`buffer`, or the envelope before it for a peer
    ///   reached through a relay), its length and where to send it, or nil when the packet
    ///   was staged for a handshake or dropped (and counted).
    @inline(__always)
    func seal(_ buffer: UnsafeMutableRawPointer, length: Int, table: ForwardingTable,
              now: UInt64) -> (start: UnsafeMutableRawPointer, length: Int, endpoint: UDPEndpoint)? {
        let packet = UnsafeRawBufferPointer(start: buffer + WireFormat.transportHeaderSize, count: length)
        guard let destination = IPPacket.ipv4Destination(packet), let route = table.route(to: destination) else {
            dropOutgoing(.dropNoRoute, bytes: length)
            return nil
        }
        guard let session = route.session, let endpoint = route.endpoint else {
            stage(packet, for: route)
            return nil
        }
        if session.shouldRekey(now: now) { requestHandshake(route) }
        var payloadLength = length
        var flags: UInt8 = 0
        if route.compression, let compressed = compressor.compressInPlace(buffer + WireFormat.transportHeaderSize,
                                                                         length: length) {
            payloadLength = compressed
            flags = TransportFlags.compressed
        }
        guard let total = session.seal(buffer, payloadLength: payloadLength, worker: worker, flags: flags) else {
            // The session is used up (or wiped) and refused before touching the payload:
            // stage the packet as it was read, undoing the compression.
            let unsent = flags == 0 ? packet
                : compressor.decompress(UnsafeRawBufferPointer(start: packet.baseAddress, count: payloadLength))
            if let unsent { stage(unsent, for: route) } else { counters.add(.dropNoSession) }
            return nil
        }
        route.signals.lastDataSent.store(now, ordering: .relaxed)
        counters.add(.txBytes, UInt64(length))
        route.signals.traffic.add(.txPackets, slot: worker)
        route.signals.traffic.add(.txBytes, UInt64(length), slot: worker)
        guard let relayEndpoint = route.relayEndpoint else { return (buffer, total, endpoint) }
        let envelope = buffer - WireFormat.relayHeaderSize
        RelayEnvelope.writeHeader(envelope, destination: route.privateIP, source: localIP)
        return (envelope, total + WireFormat.relayHeaderSize, relayEndpoint)
    }

    /// Hands a packet for a peer without a usable session to the control thread, which
    /// sends it when the handshake completes (the only copy on this path, and it is
    /// off the steady state); past `ControlPlane.stagedPacketLimit` it is dropped.
    private func stage(_ packet: UnsafeRawBufferPointer, for route: ForwardingTable.Route) {
        if route.signals.staged.load(ordering: .relaxed) < ControlPlane.stagedPacketLimit {
            route.signals.staged.wrappingAdd(1, ordering: .relaxed)
            control.post(.stage(route.privateIP, Array(packet)))
        } else {
            dropOutgoing(.dropNoSession, bytes: packet.count)
            route.signals.traffic.add(.dropNoSession, slot: worker)
            route.signals.traffic.add(.txDroppedPackets, slot: worker)
            route.signals.traffic.add(.txDroppedBytes, UInt64(packet.count), slot: worker)
        }
        requestHandshake(route)
    }

    @inline(__always)
    private func requestHandshake(_ route: ForwardingTable.Route) {
        if PeerSignals.raise(route.signals.handshakeWanted) {
            control.post(.handshakeWanted(route.privateIP, route.signals))
        }
    }

    /// Handles one datagram received from `source`: handshake messages of the right size
    /// and with a valid mac1 go to the control thread (under load, only those with a valid
    /// mac2: the others are answered with a cookie reply), transport messages are opened in place.
    /// - Returns: the inner packet to write to the TUN device (inside `message`, or in this
    ///   path's decompression buffer until the next call), or nil when there is none
    ///   (keepalive, handshake, or dropped and counted).
    @inline(__always)
    func open(_ message: UnsafeMutableRawBufferPointer, from source: UDPEndpoint, table: ForwardingTable,
              now: UInt64) -> UnsafeRawBufferPointer? {
        guard !message.isEmpty else {
            dropIncoming(.dropMalformed, bytes: 0)
            return nil
        }
        switch message[0] {
        case MessageType.transport.rawValue:
            return openTransport(message, from: source, table: table, now: now)
        case MessageType.initiation.rawValue, MessageType.response.rawValue:
            passHandshake(UnsafeRawBufferPointer(message), from: source, now: now)
        case MessageType.cookieReply.rawValue:
            guard message.count == WireFormat.cookieReplySize else {
                dropIncoming(.dropHandshakeSize, bytes: message.count)
                return nil
            }
            if !control.post(.handshake(Array(UnsafeRawBufferPointer(message)), from: source, worker: worker)) {
                dropIncoming(.dropHandshakeBacklog, bytes: message.count)
            }
        case MessageType.relayEnvelope.rawValue:
            return openEnvelope(message, from: source, table: table, now: now)
        default:
            dropIncoming(.dropMalformed, bytes: message.count)
        }
        return nil
    }

    /// Hands a handshake message of the right size and with a valid mac1 to the control
    /// thread (`origin`: the peer that sent it through the relay at `source`). Under load, a
    /// direct one without a valid mac2 is answered with a cookie reply instead; a relayed one
    /// goes on (the relay forwards only from peers it has a session with, and a cookie for
    /// the relay's address would be of no use to the peer behind it).
    func passHandshake(_ message: UnsafeRawBufferPointer, from source: UDPEndpoint, relayedFor origin: IPv4Address? = nil,
                       now: UInt64) {
        do throws(HandshakeScreen.Refusal) {
            try handshakeScreen.check(message)
        } catch {
            dropIncoming(error == .wrongSize ? .dropHandshakeSize : .dropHandshakeMAC1, bytes: message.count)
            return
        }
        if origin == nil, control.load.isUnderLoad(now: now), answeredWithCookie(message, from: source, now: now) { return }
        let bytes = Array(message)
        let event = origin.map { ControlEvent.relayedHandshake(bytes, origin: $0, via: source, worker: worker) }
            ?? ControlEvent.handshake(bytes, from: source, worker: worker)
        if !control.post(event) {
            dropIncoming(.dropHandshakeBacklog, bytes: message.count)
        }
    }

    /// Under load: drops a handshake message whose mac2 is not valid for its source and
    /// answers it with a cookie reply, from this worker's socket. No Diffie-Hellman, no
    /// allocation. Returns false (keep the message) when its mac2 is valid.
    private func answeredWithCookie(_ message: UnsafeRawBufferPointer, from source: UDPEndpoint, now: UInt64) -> Bool {
        source.withCookieIdentity { identity in
            if cookies.hasValidMAC2(message, source: identity, now: now) { return false }
            dropIncoming(.dropHandshakeMAC2, bytes: message.count)
            if cookieRate.record(backlog: 0, now: now) { control.load.markLoaded(now: now) }
            if cookies.writeReply(answering: message, source: identity, now: now, into: cookieReply) {
                control.transport.send(UnsafeRawBufferPointer(cookieReply), to: source, worker: worker)
                counters.add(.cookieRepliesSent)
            }
            return true
        }
    }

    /// Opens a transport message that came straight from `source`, or (with `origin`) from
    /// the relay at `source` inside an envelope from `origin`.
    @inline(__always)
    func openTransport(_ message: UnsafeMutableRawBufferPointer, from source: UDPEndpoint,
                       relayedFor origin: IPv4Address? = nil, table: ForwardingTable,
                       now: UInt64) -> UnsafeRawBufferPointer? {
        guard let receiver = TransportHeader.receiverIndex(UnsafeRawBufferPointer(message)) else {
            dropIncoming(.dropMalformed, bytes: message.count)
            return nil
        }
        guard let inbound = table.inbound[receiver] else {
            dropIncoming(.dropNoSession, bytes: message.count)
            // Typically a peer that still uses a session we lost by restarting: offer a new one.
            if origin == nil, now &- lastUnknownSessionHint >= PacketPath.unknownSessionHintInterval {
                lastUnknownSessionHint = now
                control.post(.unknownSession(from: source))
            }
            return nil
        }
        if let origin, origin != inbound.privateIP {
            // A relayed message must be sealed by the node the relay vouched for.
            dropIncoming(.relayRefused, bytes: message.count)
            return nil
        }
        switch inbound.session.open(message, worker: worker) {
        case .payload(let offset, let length):
            inbound.signals.lastReceived.store(now, ordering: .relaxed)
            if !inbound.confirmed && PeerSignals.raise(inbound.signals.confirmPending) {
                // Through a relay, `source` is the relay's: the peer's own address stays as it is.
                control.post(.sessionConfirmed(inbound.session.localIndex, from: origin == nil ? source : nil, inbound.signals))
            }
            if origin == nil && inbound.endpoint != source && PeerSignals.raise(inbound.signals.roamPending) {
                control.post(.roamed(inbound.session.localIndex, to: source, inbound.signals))
            }
            notePath(of: inbound, arrivedVia: origin == nil ? nil : source)
            guard length > 0 else {
                counters.add(.keepalivesReceived)
                return nil
            }
            inbound.signals.lastDataReceived.store(now, ordering: .relaxed)
            var packet = UnsafeRawBufferPointer(start: message.baseAddress! + offset, count: length)
            // Authenticated with the header, so the flags are the sender's.
            switch message[WireFormat.transportFlagsOffset] {
            case 0:
                break
            case TransportFlags.compressed:
                guard inbound.compression, let inflated = compressor.decompress(packet) else {
                    counters.add(.dropCompression)
                    return nil
                }
                packet = inflated
            default:
                counters.add(.dropMalformed)
                return nil
            }
            guard let source = IPPacket.ipv4Source(packet), let destination = IPPacket.ipv4Destination(packet) else {
                dropIncoming(.dropMalformed, .dropMalformed, bytes: message.count, from: inbound.signals.traffic)
                return nil
            }
            guard table.accepts(source: source, from: inbound) else {
                dropIncoming(.dropSpoofed, .dropSpoofed, bytes: message.count, from: inbound.signals.traffic)
                return nil
            }
            guard table.accepts(destination: destination, localIP: localIP) else {
                dropIncoming(.dropDestination, .dropDestination, bytes: message.count, from: inbound.signals.traffic)
                return nil
            }
            inbound.signals.traffic.add(.rxPackets, slot: worker)
            inbound.signals.traffic.add(.rxBytes, UInt64(length), slot: worker)
            return packet
        case .replayed:
            dropIncoming(.dropReplay, .dropReplay, bytes: message.count, from: inbound.signals.traffic)
        case .authenticationFailed:
            dropIncoming(.dropAuth, .dropAuth, bytes: message.count, from: inbound.signals.traffic)
        case .malformed:
            dropIncoming(.dropMalformed, .dropMalformed, bytes: message.count, from: inbound.signals.traffic)
        case .exhausted:
            dropIncoming(.dropNoSession, .dropNoSession, bytes: message.count, from: inbound.signals.traffic)
        }
        return nil
    }

    // MARK: - Drop accounting: the reason, the direction's totals and, when known, the peer's.

    /// Counts a packet of `bytes` (inner length) dropped on its way out.
    @inline(__always)
    func dropOutgoing(_ reason: WorkerCounter, bytes: Int) {
        counters.add(reason)
        counters.add(.txDroppedPackets)
        counters.add(.txDroppedBytes, UInt64(bytes))
    }

    /// Counts a datagram of `bytes` dropped on its way in.
    @inline(__always)
    func dropIncoming(_ reason: WorkerCounter, bytes: Int) {
        counters.add(reason)
        counters.add(.rxDroppedPackets)
        counters.add(.rxDroppedBytes, UInt64(bytes))
    }

    /// Counts a datagram of `bytes` from a known peer dropped on its way in, also in the peer's cell.
    @inline(__always)
    private func dropIncoming(_ reason: WorkerCounter, _ peerReason: PeerCounter, bytes: Int, from peer: PeerTraffic) {
        dropIncoming(reason, bytes: bytes)
        peer.add(peerReason, slot: worker)
        peer.add(.rxDroppedPackets, slot: worker)
        peer.add(.rxDroppedBytes, UInt64(bytes), slot: worker)
    }
}
