import Dispatch
import Logging
import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumDevice
import Synchronization

/// Something the control thread must act on. Events that answer a flag a worker
/// raised carry that peer's `PeerSignals`, so the flag is cleared even when the
/// session or peer the event names is gone by the time it is handled.
enum ControlEvent: Sendable {
    /// A handshake message (initiation, response or cookie reply) received by a worker.
    case handshake([UInt8], from: UDPEndpoint, worker: Int)
    /// A worker has traffic for a peer but no usable session (answers `handshakeWanted`).
    case handshakeWanted(IPv4Address, PeerSignals)
    /// A packet for a peer without a session, to send once the handshake completes.
    case stage(IPv4Address, [UInt8])
    /// A worker opened a packet with a responder session that was not yet confirmed
    /// (answers `confirmPending`); the packet came straight from `from` (nil: through a relay).
    case sessionConfirmed(UInt32, from: UDPEndpoint?, PeerSignals)
    /// A worker received a transport packet for a session it does not know (rate-limited).
    case unknownSession(from: UDPEndpoint)
    /// A worker authenticated a packet from a new address for the session's peer
    /// (answers `roamPending`); only a confirmed session moves the peer.
    case roamed(UInt32, to: UDPEndpoint, PeerSignals)
    /// A handshake message from `origin` that arrived in a relay envelope from the relay at `via`.
    case relayedHandshake([UInt8], origin: IPv4Address, via: UDPEndpoint, worker: Int)
    /// A worker authenticated a packet of the session's peer that came straight (`via` nil)
    /// or through the relay at `via`, while the table sends another way (answers `pathPending`).
    case pathChanged(UInt32, via: UDPEndpoint?, PeerSignals)
}

/// The node's control plane: one thread that owns every peer's handshake state,
/// sessions and timers, and publishes a new `ForwardingTable` after each change.
///
/// Workers and the datastore talk to it only through `post` and `enqueue`; everything
/// else is touched by the control thread alone. Its clock and transport are injected:
/// tests drive it with `step()` and a fake clock, no threads needed.
///
/// The jobs live in extensions: mapping changes (ControlPlane+Mappings.swift),
/// handshakes (+Handshakes), timers (+Timers) and the table (+Publishing).
final class ControlPlane: @unchecked Sendable {
    // @unchecked: the peer state below is confined to the control thread (or to the
    // test calling `step()`); cross-thread traffic goes through the `inbox` mutex.

    /// What the control plane needs besides its clock and transport.
    struct Configuration: Sendable {
        var localIP: IPv4Address
        var keyPair: StaticKeyPair
        /// Number of data-path workers; sessions get one more AEAD slot for the control thread.
        var workerCount: Int
        var useIPv4: Bool
        var useIPv6: Bool
        /// How long a peer whose mapping disappeared keeps its route and sessions.
        var removalGrace: UInt64
        /// Whether this node offers the compression plugin (used with peers that offer it too).
        var compression = false
        /// The private network (nil: no gateway roles, as in tests that need none).
        var network: IPv4Prefix? = nil
        /// The peer that takes traffic for outside the network (gateway client).
        var gateway: IPv4Address? = nil
        /// Whether this node accepts peers' traffic for outside the network (gateway server).
        var servesGateway = false
        /// Idle time after which a keepalive is sent on an established link that nothing else
        /// was sent on, to hold NAT bindings open (nanoseconds; 0 = off, as in tests that need none).
        var keepalive: UInt64 = 0
        /// Whether a few peers are asked at start where they see this node (NAT traversal;
        /// off in tests that need no extra handshakes).
        var probesReflexiveEndpoint = false
        /// The network CA's trust (`--network-ca-cert`); nil: every mapping is trusted.
        var trust: NetworkTrust? = nil
        /// Whether this node forwards relay envelopes between its peers (`--relay`).
        var relay = false
    }

    /// A datagram the control thread sends at the end of its turn.
    struct OutgoingDatagram {
        let bytes: [UInt8]
        let endpoint: UDPEndpoint
        /// Whose socket it leaves from.
        let worker: Int
    }

    /// Events and mapping changes waiting for the control thread.
    struct Inbox {
        var events: [ControlEvent] = []
        /// Coalesced mapping changes: the newest per address, so at most one entry per address.
        var mappings: [IPv4Address: MappingUpdate] = [:]
        /// The newest holders of floating IPs not yet applied.
        var floatingHolders: [IPv4Address: IPv4Address]?
        /// The newest revocation list not yet applied.
        var revocations: RevocationList?
        /// Handshake messages handed over in the current window (load detection).
        var handshakeRate = HandshakeRate()
    }

    /// Most handshake messages waiting for the control thread; more are dropped (and counted).
    static let handshakeBacklog = 256
    /// How often timers are checked.
    static let tickInterval: UInt64 = 250 * 1_000_000
    /// Shortest time between two tables published for mapping churn alone (session
    /// changes publish at once).
    static let mappingPublishInterval: UInt64 = 200 * 1_000_000
    /// Most packets kept per peer while its handshake runs (the newest are kept).
    static let stagedPacketLimit = 16
    /// How long sending without hearing back makes us start a new handshake
    /// (the peer's keepalive timeout plus one handshake timeout).
    static let newHandshakeTime: UInt64 = SessionLimits.keepaliveTimeout + SessionLimits.rekeyTimeout
    /// Most strangers remembered; past it the oldest is forgotten.
    static let strangerLimit = 64
    /// How long a stranger is remembered: until its own retry would reach us anyway.
    static let strangerMemory: UInt64 = SessionLimits.rekeyTimeout
    /// How long to keep retrying an unanswered handshake before waiting for new traffic.
    static let rekeyAttemptTime: UInt64 = 90 * SessionLimits.nanosecondsPerSecond
    /// Age at which the initiator of a session it still receives on starts a new handshake
    /// (REJECT − KEEPALIVE − REKEY_TIMEOUT = 165 s), so a one-way flow towards the
    /// initiator never runs into the reject limit.
    static let receiveRekeyAge: UInt64 =
        SessionLimits.rejectAfterTime - SessionLimits.keepaliveTimeout - SessionLimits.rekeyTimeout
    /// Most untrusted mappings remembered as reported; past it the memory starts afresh.
    static let untrustedReportLimit = 4096

    let localIP: IPv4Address
    let localPublicKey: [UInt8]
    let handshaker: Handshaker
    let transport: any ControlTransport
    let clock: any ControlClock
    let workerCount: Int
    let useIPv4: Bool
    let useIPv6: Bool
    let removalGrace: UInt64
    /// Whether this node offers the compression plugin.
    let compression: Bool
    let network: IPv4Prefix?
    let gateway: IPv4Address?
    let servesGateway: Bool
    /// Persistent keepalive interval in nanoseconds, 0 = off.
    let keepalive: UInt64
    /// Whether peers are asked where they see this node until one said.
    let probesReflexiveEndpoint: Bool
    /// Whether this node forwards relay envelopes between its peers (`--relay`).
    let offersRelay: Bool
    let tables: ForwardingTableHolder
    let logger: Logger
    let counters = CounterSet<ControlCounter>()
    /// What snapshots show of the peers (see NodeSnapshot.swift).
    let directory = PeerDirectory()
    /// The network CA's trust and the newest revocation list (nil without a CA).
    var trust: NetworkTrust?
    /// When the certificate of each trusted mapping ends (seconds since 1970).
    var certificateExpiry: [IPv4Address: UInt64] = [:]
    /// Untrusted mappings already warned about.
    var untrustedReported: Set<UntrustedMapping> = []
    /// Whether the node is under a handshake load, and its cookie secret (read by the workers).
    let load = HandshakeLoad()
    /// Per source address limits on initiations answered under load (control thread only).
    var sourceLimiter = SourceRateLimiter()

    private let inbox = Mutex(Inbox())
    private let wakeup = DispatchSemaphore(value: 0)
    private let running = Atomic<Bool>(true)
    /// Set by `pause()`: the loop ends without withdrawing the sessions.
    private let keepsSessionsOnExit = Atomic<Bool>(false)

    /// Peers that own their mapping's public key (the only ones with routes and sessions).
    var peers: [IPv4Address: Peer] = [:]
    /// Every mapping the datastore reported, plus removed ones still in their grace period.
    var known: [IPv4Address: Claim] = [:]
    /// The addresses whose mappings carry each public key (normally one).
    var claimants: [[UInt8]: [IPv4Address]] = [:]
    /// Addresses whose mapping was removed and whose peer is kept until the grace ends.
    var graced: Set<IPv4Address> = []
    /// Each floating IP with a known holder, mapped to the holder's private address.
    var floatingHolders: [IPv4Address: IPv4Address] = [:]
    /// Which peer each local index (session or pending initiation) belongs to.
    var owners: [UInt32: IPv4Address] = [:]
    /// Public keys whose valid initiations arrived before any mapping carried them, with
    /// when (a node that just registered hears from peers before it has read the map).
    var strangers: [[UInt8]: UInt64] = [:]
    /// Datagrams to send once this turn's table is published: a peer may answer at
    /// once, and its answer must find the new sessions in the workers' table.
    var outbox: [OutgoingDatagram] = []
    /// This node's reflexive endpoint as peers report it, and whom it asked (NAT traversal).
    var traversal = NATTraversal()
    /// The reflexive endpoints to publish in this node's mapping.
    let reflexiveCandidates = ReflexiveCandidates()
    /// When the timers run next.
    private var nextTick: UInt64 = 0
    /// When the last table was published.
    private var lastPublished: UInt64 = 0
    /// Whether mapping changes wait for the next table (rate-limited publication).
    private var mappingsUnpublished = false
    /// Whether a peer's path (direct or relayed) changed outside the events that publish anyway.
    var pathsChanged = false
    /// How many peers the last published table routes to (logged when it changes).
    var publishedPeerCount = 0

    /// The AEAD slot of every session reserved for the control thread (keepalives,
    /// staged packets): the workers use slots 0..<workerCount.
    var controlSlot: Int { workerCount }

    init(configuration: Configuration, transport: any ControlTransport, clock: any ControlClock,
         tables: ForwardingTableHolder, logger: Logger) {
        localIP = configuration.localIP
        compression = configuration.compression
        localPublicKey = configuration.keyPair.publicKey
        handshaker = Handshaker(localKeys: configuration.keyPair)
        workerCount = configuration.workerCount
        useIPv4 = configuration.useIPv4
        useIPv6 = configuration.useIPv6
        removalGrace = configuration.removalGrace
        network = configuration.network
        gateway = configuration.gateway
        servesGateway = configuration.servesGateway
        keepalive = configuration.keepalive
        probesReflexiveEndpoint = configuration.probesReflexiveEndpoint
        trust = configuration.trust
        offersRelay = configuration.relay
        self.transport = transport
        self.clock = clock
        self.tables = tables
        self.logger = logger
    }

    /// Queues an event for the control thread. Returns false when a handshake
    /// message was dropped because the backlog is full.
    @discardableResult
    func post(_ event: ControlEvent) -> Bool {
        let accepted = inbox.withLock { inbox in
            if event.carriesHandshake {
                let now = clock.now()
                if inbox.handshakeRate.record(backlog: inbox.events.count, now: now) { load.markLoaded(now: now) }
                if inbox.events.count >= ControlPlane.handshakeBacklog { return false }
            }
            inbox.events.append(event)
            return true
        }
        if accepted { wakeup.signal() }
        return accepted
    }

    /// Queues mapping changes, replacing any still-pending change for the same address:
    /// memory is bounded by the number of addresses however fast the datastore churns.
    func enqueue(_ updates: [MappingUpdate]) {
        guard !updates.isEmpty else { return }
        inbox.withLock { inbox in
            for update in updates { inbox.mappings[update.address] = update }
        }
        wakeup.signal()
    }

    /// Replaces the holders of floating IPs (floating IP → holder's private address); the
    /// next turn publishes a table with them.
    func setFloatingHolders(_ holders: [IPv4Address: IPv4Address]) {
        inbox.withLock { $0.floatingHolders = holders }
        wakeup.signal()
    }

    /// Queues a revocation list; the next turn adopts it if the CA signed it and it is not
    /// older than the one in force, and cuts off the peers it names.
    func setRevocations(_ list: RevocationList) {
        inbox.withLock { $0.revocations = list }
        wakeup.signal()
    }

    /// How many mapping changes wait for the control thread.
    var pendingMappingCount: Int { inbox.withLock { $0.mappings.count } }

    /// How many events (handshake messages, staged packets, signals) wait for the control thread.
    var pendingEventCount: Int { inbox.withLock { $0.events.count } }

    /// Makes the control loop take a turn now.
    func wakeUp() {
        wakeup.signal()
    }

    /// Stops the control loop.
    func stop() {
        keepsSessionsOnExit.store(false, ordering: .relaxed)
        running.store(false, ordering: .relaxed)
        wakeup.signal()
    }

    /// Stops the control loop but keeps every peer, session and the published table, so
    /// that `run()` can carry on later or the state can be handed over.
    func pause() {
        keepsSessionsOnExit.store(true, ordering: .relaxed)
        running.store(false, ordering: .relaxed)
        wakeup.signal()
    }

    /// Lets `run()` loop again after `pause()` (call before starting its thread).
    func prepareToResume() {
        keepsSessionsOnExit.store(false, ordering: .relaxed)
        running.store(true, ordering: .relaxed)
    }

    /// The control loop; returns after `stop()`, having withdrawn every session, or after
    /// `pause()`, keeping them.
    func run() {
        while running.load(ordering: .relaxed) {
            _ = wakeup.wait(timeout: .now() + .nanoseconds(Int(nanosecondsUntilDue(now: clock.now()))))
            step()
        }
        guard !keepsSessionsOnExit.load(ordering: .relaxed) else { return }
        for peer in peers.values { peer.forgetSessions() }
        tables.publish(.empty)
    }

    /// How long the loop may sleep: until the next timer tick, or the deferred table.
    func nanosecondsUntilDue(now: UInt64) -> UInt64 {
        var due = nextTick
        if mappingsUnpublished { due = min(due, lastPublished + ControlPlane.mappingPublishInterval) }
        return due > now ? due - now : 0
    }

    /// One turn of the control loop: applies the queued mapping changes, handles the
    /// queued events, runs the timers when due, publishes a new table when sessions
    /// changed (at once) or mappings changed (at most every `mappingPublishInterval`),
    /// and only then sends what the turn produced.
    func step() {
        let now = clock.now()
        let (events, updates, floating, revocations) = inbox.withLock { inbox in
            defer {
                inbox.events.removeAll(keepingCapacity: true)
                inbox.mappings = [:]
                inbox.floatingHolders = nil
                inbox.revocations = nil
            }
            return (inbox.events, inbox.mappings, inbox.floatingHolders, inbox.revocations)
        }
        counters.add(.mappingChangesApplied, UInt64(updates.count))
        for update in updates.values where admits(update) && applyMapping(update, now: now) {
            mappingsUnpublished = true
        }
        if !updates.isEmpty && !strangers.isEmpty { greetStrangers(now: now) }
        var sessionsChanged = false
        // A revoked peer's sessions are withdrawn from the workers at once.
        if let revocations, applyRevocations(revocations, now: now) { sessionsChanged = true }
        // A floating IP that moved is published at once: failover time counts.
        if let floating, floating != floatingHolders {
            floatingHolders = floating
            sessionsChanged = true
        }
        for event in events {
            sessionsChanged = handle(event, now: now) || sessionsChanged
        }
        if now >= nextTick {
            sessionsChanged = tick(now: now) || sessionsChanged
            nextTick = now + ControlPlane.tickInterval
        }
        sessionsChanged = takePathChanges() || sessionsChanged
        if sessionsChanged || (mappingsUnpublished && now >= lastPublished + ControlPlane.mappingPublishInterval) {
            publish()
            lastPublished = now
            mappingsUnpublished = false
        }
        for datagram in outbox {
            datagram.bytes.withUnsafeBytes { transport.send($0, to: datagram.endpoint, worker: datagram.worker) }
        }
        outbox.removeAll(keepingCapacity: true)
        publishDirectoryIfRequested()
    }

    // MARK: - Events

    private func handle(_ event: ControlEvent, now: UInt64) -> Bool {
        switch event {
        case .stage(let address, let packet):
            guard let peer = peers[address] else { return false }
            peer.staged.append(packet)
            if peer.staged.count > ControlPlane.stagedPacketLimit {
                let dropped = peer.staged.removeFirst()
                counters.add(.stagedDropped)
                peer.signals.traffic.add(.txDroppedPackets, slot: controlSlot)
                peer.signals.traffic.add(.txDroppedBytes, UInt64(dropped.count), slot: controlSlot)
            }
            return false
        case .handshakeWanted(let address, let signals):
            guard let peer = peers[address], peer.signals === signals else {
                signals.handshakeWanted.store(false, ordering: .relaxed)
                return false
            }
            return initiate(peer, now: now)
        case .handshake(let bytes, let source, let worker):
            return bytes.withUnsafeBytes { message in
                switch message[0] {
                case MessageType.initiation.rawValue: respond(to: message, from: source, worker: worker, now: now)
                case MessageType.cookieReply.rawValue: consumeCookieReply(message, from: source, now: now)
                default: complete(with: message, from: source, worker: worker, now: now)
                }
            }
        case .sessionConfirmed(let index, let source, let signals):
            signals.confirmPending.store(false, ordering: .relaxed)
            guard let address = owners[index], let peer = peers[address], let next = peer.next,
                  next.localIndex == index else { return false }
            retire(peer.previous)
            peer.previous = peer.current
            peer.current = next
            peer.next = nil
            // The initiator's first packet on the session: only now does its address count.
            if let source, peer.endpoint != source {
                logger.info("peer \(address) confirmed its session from \(source)")
                peer.endpoint = source
            }
            sendStaged(peer, now: now)
            return true
        case .unknownSession(let source):
            // Unauthenticated, so it only ever starts a handshake with the peer at that address.
            guard let peer = peers.values.first(where: { $0.endpoint == source }), peer.pending == nil else { return false }
            logger.debug("\(peer.mapping.privateIP) uses a session this node does not have; starting a new one")
            return initiate(peer, now: now)
        case .roamed(let index, let endpoint, let signals):
            signals.roamPending.store(false, ordering: .relaxed)
            guard let address = owners[index], let peer = peers[address], peer.endpoint != endpoint,
                  peer.next?.localIndex != index else { return false }
            logger.info("peer \(address) moved to \(endpoint)")
            peer.endpoint = endpoint
            return true
        case .relayedHandshake(let bytes, let origin, let relay, let worker):
            return handleRelayedHandshake(bytes, origin: origin, via: relay, worker: worker, now: now)
        case .pathChanged(let index, let relay, let signals):
            return changePath(ofSession: index, via: relay, signals, now: now)
        }
    }
}
