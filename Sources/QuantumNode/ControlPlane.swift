import Dispatch
import Foundation
import Logging
import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumDevice
import Synchronization

/// Something the control thread must act on.
enum ControlEvent: Sendable {
    /// A handshake message (initiation or response) received by a worker.
    case handshake([UInt8], from: UDPEndpoint, worker: Int)
    /// A worker has traffic for a peer but no usable session.
    case handshakeWanted(IPv4Address)
    /// A packet for a peer without a session, to send once the handshake completes.
    case stage(IPv4Address, [UInt8])
    /// A worker opened a packet with a responder session that was not yet confirmed.
    case sessionConfirmed(UInt32)
    /// A worker received a transport packet for a session it does not know (rate-limited).
    case unknownSession(from: UDPEndpoint)
    /// A worker authenticated a packet from a new address for the session's peer.
    case roamed(UInt32, to: UDPEndpoint)
    /// The datastore's view of the network changed.
    case mappings([MappingUpdate])
}

/// The node's control plane: one thread that owns every peer's handshake state,
/// sessions and timers, and publishes a new `ForwardingTable` after each change.
///
/// Workers and the datastore talk to it only through `post`; everything else in
/// here is touched by the control thread alone.
final class ControlPlane: @unchecked Sendable {
    // @unchecked: `peers`, `owners` and the table-building state are confined to the
    // control thread; cross-thread traffic goes through the `events` mutex.

    /// Most handshake messages waiting for the control thread; more are dropped (and counted).
    static let handshakeBacklog = 256
    /// How often timers are checked.
    static let tickMilliseconds = 250
    /// Most packets kept per peer while its handshake runs (the newest are kept).
    static let stagedPacketLimit = 16
    /// How long sending without hearing back makes us start a new handshake
    /// (the peer's keepalive timeout plus one handshake timeout).
    static let newHandshakeTime: UInt64 = SessionLimits.keepaliveTimeout + SessionLimits.rekeyTimeout
    /// How long to keep retrying an unanswered handshake before waiting for new traffic.
    static let rekeyAttemptTime: UInt64 = 90 * SessionLimits.nanosecondsPerSecond

    /// The control plane's view of one peer.
    private final class Peer {
        var mapping: Mapping
        var endpoint: UDPEndpoint?
        let signals = PeerSignals()
        /// The session we send with.
        var current: Session?
        /// The session before `current`, kept to receive packets still in flight.
        var previous: Session?
        /// A responder session waiting for the initiator's first packet.
        var next: Session?
        var pending: PendingInitiation?
        /// Packets waiting for a session, oldest first.
        var staged: [[UInt8]] = []
        /// When the control thread last sent this peer a keepalive.
        var lastKeepaliveSent: UInt64 = 0
        /// The newest initiation timestamp accepted from this peer (against replayed initiations).
        var newestTimestamp: TAI64N?

        init(mapping: Mapping, endpoint: UDPEndpoint?) {
            self.mapping = mapping
            self.endpoint = endpoint
        }

        var sessions: [Session] { [current, previous, next].compactMap { $0 } }

        /// Forgets every session. Keys are wiped when the last reference goes: a worker
        /// may still be sealing with one from the previous table, so never wipe here.
        func forgetSessions() {
            staged.removeAll()
            signals.staged.store(0, ordering: .relaxed)
            current = nil
            previous = nil
            next = nil
            pending = nil
        }
    }

    /// An initiation we sent and await a response to.
    private struct PendingInitiation {
        let state: InitiatorState
        let localIndex: UInt32
        let sentAt: UInt64
        let firstAttemptAt: UInt64
    }

    private let localIP: IPv4Address
    private let localPublicKey: [UInt8]
    private let handshaker: Handshaker
    private let sockets: [UDPSocket]
    private let workerCount: Int
    private let useIPv4: Bool
    private let useIPv6: Bool
    private let tables: ForwardingTableHolder
    private let logger: Logger
    let counters = CounterSet<ControlCounter>()

    private let events = Mutex<[ControlEvent]>([])
    private let wakeup = DispatchSemaphore(value: 0)
    private let running = Atomic<Bool>(true)

    private var peers: [IPv4Address: Peer] = [:]
    /// Every mapping the datastore reported.
    private var known: [IPv4Address: Mapping] = [:]
    /// Which peer each local index (session or pending initiation) belongs to.
    private var owners: [UInt32: IPv4Address] = [:]

    init(localIP: IPv4Address, keyPair: StaticKeyPair, sockets: [UDPSocket], workerCount: Int,
         useIPv4: Bool, useIPv6: Bool, tables: ForwardingTableHolder, logger: Logger) {
        self.localIP = localIP
        localPublicKey = keyPair.publicKey
        handshaker = Handshaker(localKeys: keyPair)
        self.sockets = sockets
        self.workerCount = workerCount
        self.useIPv4 = useIPv4
        self.useIPv6 = useIPv6
        self.tables = tables
        self.logger = logger
    }

    /// Queues an event for the control thread. Returns false when a handshake
    /// message was dropped because the backlog is full.
    @discardableResult
    func post(_ event: ControlEvent) -> Bool {
        let accepted = events.withLock { queue in
            if case .handshake = event, queue.count >= ControlPlane.handshakeBacklog { return false }
            queue.append(event)
            return true
        }
        if accepted { wakeup.signal() }
        return accepted
    }

    /// Stops the control loop.
    func stop() {
        running.store(false, ordering: .relaxed)
        wakeup.signal()
    }

    /// The control loop; returns after `stop()`.
    func run() {
        var nextTick = monotonicNanoseconds()
        while running.load(ordering: .relaxed) {
            _ = wakeup.wait(timeout: .now() + .milliseconds(ControlPlane.tickMilliseconds))
            let batch = events.withLock { queue in
                defer { queue.removeAll(keepingCapacity: true) }
                return queue
            }
            var changed = false
            for event in batch {
                changed = handle(event) || changed
            }
            let now = monotonicNanoseconds()
            if now >= nextTick {
                changed = tick(now: now) || changed
                nextTick = now + UInt64(ControlPlane.tickMilliseconds) * 1_000_000
            }
            if changed { publish() }
        }
        for peer in peers.values { peer.forgetSessions() }
        tables.publish(.empty)
    }

    // MARK: - Events

    private func handle(_ event: ControlEvent) -> Bool {
        switch event {
        case .mappings(let updates):
            for update in updates { known[update.address] = update.mapping }
            return apply(known)
        case .stage(let address, let packet):
            guard let peer = peers[address] else { return false }
            peer.staged.append(packet)
            if peer.staged.count > ControlPlane.stagedPacketLimit {
                peer.staged.removeFirst()
                counters.add(.stagedDropped)
            }
            return false
        case .handshakeWanted(let address):
            guard let peer = peers[address] else { return false }
            return initiate(peer, now: monotonicNanoseconds())
        case .handshake(let bytes, let source, let worker):
            return bytes.withUnsafeBytes { message in
                message[0] == MessageType.initiation.rawValue
                    ? respond(to: message, from: source, worker: worker)
                    : complete(with: message, from: source, worker: worker)
            }
        case .sessionConfirmed(let index):
            guard let address = owners[index], let peer = peers[address] else { return false }
            peer.signals.confirmPending.store(false, ordering: .relaxed)
            guard let next = peer.next, next.localIndex == index else { return false }
            retire(peer.previous)
            peer.previous = peer.current
            peer.current = next
            peer.next = nil
            sendStaged(peer)
            return true
        case .unknownSession(let source):
            // Unauthenticated, so it only ever starts a handshake with the peer at that address.
            guard let peer = peers.values.first(where: { $0.endpoint == source }), peer.pending == nil else { return false }
            logger.debug("\(peer.mapping.privateIP) uses a session this node does not have; starting a new one")
            return initiate(peer, now: monotonicNanoseconds())
        case .roamed(let index, let endpoint):
            guard let address = owners[index], let peer = peers[address] else { return false }
            peer.signals.roamPending.store(false, ordering: .relaxed)
            guard peer.endpoint != endpoint else { return false }
            logger.info("peer \(address) moved to \(endpoint)")
            peer.endpoint = endpoint
            return true
        }
    }

    /// Reconciles the peer set with the datastore's mappings.
    private func apply(_ mappings: [IPv4Address: Mapping]) -> Bool {
        var changed = false
        for (address, mapping) in mappings where address != localIP {
            guard mapping.publicKey != localPublicKey else {
                logger.warning("mapping \(address) carries this node's own public key; ignored")
                continue
            }
            if let peer = peers[address] {
                guard peer.mapping != mapping else { continue }
                if peer.mapping.publicKey != mapping.publicKey {
                    logger.info("peer \(address) has a new public key; its sessions are dropped")
                    dropSessions(of: peer)
                }
                peer.mapping = mapping
                peer.endpoint = endpoint(for: mapping)
                changed = true
            } else {
                let endpoint = endpoint(for: mapping)
                peers[address] = Peer(mapping: mapping, endpoint: endpoint)
                logger.info("peer \(address) added at \(endpoint.map(\.description) ?? "no reachable endpoint")")
                changed = true
            }
        }
        for (address, peer) in peers where mappings[address] == nil {
            logger.info("peer \(address) removed")
            dropSessions(of: peer)
            peers[address] = nil
            changed = true
        }
        return changed
    }

    /// The endpoint to use for a mapping: IPv4 when both sides may use it, else IPv6.
    private func endpoint(for mapping: Mapping) -> UDPEndpoint? {
        let family = sockets[0].family
        if useIPv4, let v4 = mapping.ipv4 { return UDPEndpoint(v4, port: mapping.port, family: family) }
        if useIPv6, family == .ipv6, let v6 = mapping.ipv6 { return UDPEndpoint(v6, port: mapping.port) }
        return nil
    }

    private func dropSessions(of peer: Peer) {
        for session in peer.sessions { owners[session.localIndex] = nil }
        if let pending = peer.pending { owners[pending.localIndex] = nil }
        peer.forgetSessions()
    }

    /// Frees a session's index; its keys are wiped once no table refers to it.
    private func retire(_ session: Session?) {
        guard let session else { return }
        owners[session.localIndex] = nil
    }

    // MARK: - Handshakes

    /// Sends an initiation to `peer` unless one is already in flight.
    private func initiate(_ peer: Peer, now: UInt64) -> Bool {
        if let pending = peer.pending, elapsed(since: pending.sentAt, now: now) < SessionLimits.rekeyTimeout { return false }
        guard let endpoint = peer.endpoint else {
            peer.signals.handshakeWanted.store(false, ordering: .relaxed)
            return false
        }
        let index = freshIndex(for: peer.mapping.privateIP)
        let message: [UInt8]
        let state: InitiatorState
        do {
            (message, state) = try handshaker.makeInitiation(
                peerPublicKey: peer.mapping.publicKey, senderIndex: index, timestamp: TAI64N.now())
        } catch {
            owners[index] = nil
            peer.signals.handshakeWanted.store(false, ordering: .relaxed)
            logger.warning("cannot start a handshake with \(peer.mapping.privateIP): \(error)")
            return false
        }
        if let old = peer.pending { owners[old.localIndex] = nil }
        peer.pending = PendingInitiation(state: state, localIndex: index, sentAt: now,
                                         firstAttemptAt: peer.pending?.firstAttemptAt ?? now)
        counters.add(.handshakesInitiated)
        logger.debug("handshake initiation to \(peer.mapping.privateIP) at \(endpoint)")
        message.withUnsafeBytes { _ = sockets[0].send($0, to: endpoint) }
        return false
    }

    /// Answers a valid initiation from a known peer with a fresh timestamp.
    private func respond(to message: UnsafeRawBufferPointer, from source: UDPEndpoint, worker: Int) -> Bool {
        let initiation: ReceivedInitiation
        do {
            initiation = try handshaker.consumeInitiation(message)
        } catch {
            counters.add(.handshakesRejected)
            logger.debug("initiation from \(source) rejected: \(error)")
            return false
        }
        guard let peer = peers.values.first(where: { $0.mapping.publicKey == initiation.peerPublicKey }) else {
            counters.add(.handshakesRejected)
            logger.debug("initiation from \(source) with a key no mapping carries; ignored")
            return false
        }
        if let newest = peer.newestTimestamp, initiation.timestamp <= newest {
            counters.add(.handshakesRejected)
            logger.debug("initiation from \(peer.mapping.privateIP) replays an old timestamp; ignored")
            return false
        }
        peer.newestTimestamp = initiation.timestamp
        let index = freshIndex(for: peer.mapping.privateIP)
        let response: [UInt8]
        let session: Session
        do {
            let keys: SessionKeys
            (response, keys) = try handshaker.makeResponse(to: initiation, senderIndex: index)
            session = try Session(keys: keys, workers: workerCount + 1, now: monotonicNanoseconds())
        } catch {
            owners[index] = nil
            counters.add(.handshakesRejected)
            logger.warning("cannot answer the handshake of \(peer.mapping.privateIP): \(error)")
            return false
        }
        retire(peer.next)
        peer.next = session
        peer.endpoint = source
        counters.add(.handshakesCompleted)
        logger.debug("handshake with \(peer.mapping.privateIP) answered (session \(index))")
        response.withUnsafeBytes { _ = sockets[worker].send($0, to: source) }
        return true
    }

    /// Completes our initiation with the peer's response.
    private func complete(with message: UnsafeRawBufferPointer, from source: UDPEndpoint, worker: Int) -> Bool {
        guard let receiver = HandshakeResponse.receiverIndex(message), let address = owners[receiver],
              let peer = peers[address], let pending = peer.pending, pending.localIndex == receiver else {
            counters.add(.handshakesRejected)
            return false
        }
        let session: Session
        do {
            let keys = try handshaker.consumeResponse(message, state: pending.state)
            session = try Session(keys: keys, workers: workerCount + 1, now: monotonicNanoseconds())
        } catch {
            counters.add(.handshakesRejected)
            logger.debug("response from \(source) rejected: \(error)")
            return false
        }
        peer.pending = nil
        retire(peer.previous)
        peer.previous = peer.current
        peer.current = session
        peer.endpoint = source
        peer.signals.handshakeWanted.store(false, ordering: .relaxed)
        counters.add(.handshakesCompleted)
        logger.debug("handshake with \(address) complete (session \(receiver))")
        // Confirm the session to the responder at once, so it can send with it.
        sendKeepalive(peer, session: session, to: source, worker: worker)
        sendStaged(peer)
        return true
    }

    private func sendKeepalive(_ peer: Peer, session: Session, to endpoint: UDPEndpoint, worker: Int) {
        var buffer = [UInt8](repeating: 0, count: WireFormat.transportOverhead)
        let length = buffer.withUnsafeMutableBytes {
            session.seal($0.baseAddress!, payloadLength: 0, worker: workerCount, flags: 0)
        }
        guard let length else { return }
        peer.lastKeepaliveSent = monotonicNanoseconds()
        counters.add(.keepalivesSent)
        buffer.withUnsafeBytes { _ = sockets[worker].send(UnsafeRawBufferPointer(rebasing: $0[0..<length]), to: endpoint) }
    }

    /// Seals and sends the packets that waited for this peer's session.
    private func sendStaged(_ peer: Peer) {
        defer {
            peer.staged.removeAll()
            peer.signals.staged.store(0, ordering: .relaxed)
        }
        guard !peer.staged.isEmpty, let session = peer.current, let endpoint = peer.endpoint else { return }
        for packet in peer.staged {
            var message = [UInt8](repeating: 0, count: packet.count + WireFormat.transportOverhead)
            message.replaceSubrange(WireFormat.transportHeaderSize..<WireFormat.transportHeaderSize + packet.count, with: packet)
            let length = message.withUnsafeMutableBytes {
                session.seal($0.baseAddress!, payloadLength: packet.count, worker: workerCount, flags: 0)
            }
            guard let length else { break }
            message.withUnsafeBytes { _ = sockets[0].send(UnsafeRawBufferPointer(rebasing: $0[0..<length]), to: endpoint) }
            counters.add(.stagedSent)
        }
        peer.signals.lastDataSent.store(monotonicNanoseconds(), ordering: .relaxed)
    }

    /// A random local index not in use.
    private func freshIndex(for address: IPv4Address) -> UInt32 {
        while true {
            let index = UInt32.random(in: 1...UInt32.max)
            if owners[index] == nil {
                owners[index] = address
                return index
            }
        }
    }

    // MARK: - Timers

    /// Retransmits, expires and keeps alive; returns true if the table must change.
    private func tick(now: UInt64) -> Bool {
        var changed = false
        for peer in peers.values {
            if let pending = peer.pending, elapsed(since: pending.sentAt, now: now) >= SessionLimits.rekeyTimeout {
                if elapsed(since: pending.firstAttemptAt, now: now) >= ControlPlane.rekeyAttemptTime {
                    owners[pending.localIndex] = nil
                    peer.pending = nil
                    peer.signals.handshakeWanted.store(false, ordering: .relaxed)
                    counters.add(.stagedDropped, UInt64(peer.staged.count))
                    peer.staged.removeAll()
                    peer.signals.staged.store(0, ordering: .relaxed)
                    counters.add(.handshakeTimeouts)
                    logger.debug("no handshake response from \(peer.mapping.privateIP); giving up until there is traffic")
                } else {
                    _ = initiate(peer, now: now)
                }
            }
            for session in peer.sessions where session.isExpired(now: now) {
                if peer.current === session { peer.current = nil }
                if peer.previous === session { peer.previous = nil }
                if peer.next === session { peer.next = nil }
                retire(session)
                changed = true
            }
            if let session = peer.current, let endpoint = peer.endpoint {
                let lastDataSent = peer.signals.lastDataSent.load(ordering: .relaxed)
                let lastReceived = peer.signals.lastReceived.load(ordering: .relaxed)
                let lastDataReceived = peer.signals.lastDataReceived.load(ordering: .relaxed)
                if lastDataReceived > max(lastDataSent, peer.lastKeepaliveSent),
                   elapsed(since: lastDataReceived, now: now) >= SessionLimits.keepaliveTimeout {
                    // We received data and have sent nothing since: a keepalive tells the
                    // peer we are alive (and holds NAT bindings open). Never in reply to a keepalive.
                    sendKeepalive(peer, session: session, to: endpoint, worker: 0)
                } else if lastDataSent > lastReceived, peer.pending == nil,
                          elapsed(since: lastDataSent, now: now) < ControlPlane.newHandshakeTime,
                          elapsed(since: max(lastReceived, session.createdAt), now: now) >= ControlPlane.newHandshakeTime {
                    // We send but hear nothing back (a live peer answers within the keepalive
                    // timeout): the peer has probably lost the session, e.g. by restarting.
                    logger.debug("no answer from \(peer.mapping.privateIP) on its session; starting a new handshake")
                    _ = initiate(peer, now: now)
                }
            }
        }
        return changed
    }

    /// Time from `since` to `now`, zero when a worker stamped `since` after the control
    /// thread read `now` (the clocks are the same; the reads race).
    private func elapsed(since: UInt64, now: UInt64) -> UInt64 {
        now > since ? now - since : 0
    }

    // MARK: - Publishing

    private func publish() {
        var routes: [IPv4Address: ForwardingTable.Route] = [:]
        var inbound: [UInt32: ForwardingTable.Inbound] = [:]
        for (address, peer) in peers {
            routes[address] = .init(privateIP: address, endpoint: peer.endpoint, session: peer.current, signals: peer.signals)
            for session in peer.sessions {
                inbound[session.localIndex] = .init(session: session, privateIP: address, endpoint: peer.endpoint,
                                                    signals: peer.signals, confirmed: session !== peer.next)
            }
        }
        tables.publish(ForwardingTable(routes: routes, inbound: inbound))
    }
}
