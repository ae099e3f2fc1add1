import Foundation
import Logging
import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumDevice
import Synchronization

/// The engine of one quantum node: the workers of the data path and the control
/// plane that owns handshakes and timers, wired to a TUN device's queues and UDP sockets.
///
/// The node does no system configuration of its own: the caller creates the
/// device and sockets (or in-memory stand-ins in tests) and hands them over.
public final class Node: Sendable {
    /// What the engine needs to know about its own place in the network.
    public struct Settings: Sendable {
        /// This node's private address.
        public var privateIP: IPv4Address
        /// The MTU of the TUN device (largest inner packet).
        public var mtu: Int
        /// Whether peers may be reached over IPv4 / IPv6.
        public var useIPv4: Bool
        public var useIPv6: Bool
        /// How long a peer whose mapping left the datastore keeps its route and sessions
        /// (in case the mapping comes back, e.g. after the prefix was wiped), in nanoseconds.
        public var removalGrace: UInt64
        /// The TUN device's name, used in the fatal-error message.
        public var deviceName: String
        /// The private network; needed for the gateway roles below.
        public var network: IPv4Prefix?
        /// The private IP of the peer that takes traffic for outside the network (`--forward`).
        public var gateway: IPv4Address?
        /// Whether peers' traffic for outside the network is accepted (`--serve-gateway`).
        public var servesGateway: Bool
        /// Called once, from a worker thread, when the node cannot go on (its TUN queue
        /// is gone or fails on every read for a second), with one line naming the device
        /// and the errno. The failed worker has stopped; the caller should `stop()` the
        /// node and exit non-zero. Must not call `stop()` itself on the calling thread.
        public var onFatalError: @Sendable (String) -> Void
        /// Whether this node offers the compression plugin (advertised in its mapping).
        public var compression: Bool
        /// Idle time after which an established link gets a keepalive to hold NAT bindings
        /// open (`--keepalive`), in nanoseconds; 0 = off.
        public var keepalive: UInt64
        /// The network CA's trust (`--network-ca-cert`): only peers it certifies count. Nil: all do.
        public var trust: NetworkTrust?
        /// Whether this node forwards relay envelopes between its peers (`--relay`).
        public var relay: Bool

        public init(privateIP: IPv4Address, mtu: Int, useIPv4: Bool, useIPv6: Bool,
                    removalGrace: UInt64 = 120 * 1_000_000_000, deviceName: String = "tun",
                    onFatalError: @escaping @Sendable (String) -> Void = { _ in }, compression: Bool = false,
                    network: IPv4Prefix? = nil, gateway: IPv4Address? = nil, servesGateway: Bool = false,
                    keepalive: UInt64 = 0, trust: NetworkTrust? = nil, relay: Bool = false) {
            self.privateIP = privateIP
            self.mtu = mtu
            self.useIPv4 = useIPv4
            self.useIPv6 = useIPv6
            self.removalGrace = removalGrace
            self.deviceName = deviceName
            self.onFatalError = onFatalError
            self.compression = compression
            self.network = network
            self.gateway = gateway
            self.servesGateway = servesGateway
            self.keepalive = keepalive
            self.trust = trust
            self.relay = relay
        }
    }

    private let workers: [Worker]
    private let control: ControlPlane
    private let pollers: [Poller]
    private let finished = DispatchGroup()
    private let fatalError: FatalErrorReport

    /// Builds the engine; `queues` and `sockets` must have the same count (one per worker).
    public init(settings: Settings, keyPair: StaticKeyPair, queues: [PacketQueue], sockets: [UDPSocket],
                logger: Logger) throws {
        precondition(!queues.isEmpty && queues.count == sockets.count, "one TUN queue and one socket per worker")
        let tables = ForwardingTableHolder()
        var configuration = ControlPlane.Configuration(
            localIP: settings.privateIP, keyPair: keyPair, workerCount: queues.count,
            useIPv4: settings.useIPv4, useIPv6: settings.useIPv6, removalGrace: settings.removalGrace,
            compression: settings.compression,
            network: settings.network, gateway: settings.gateway, servesGateway: settings.servesGateway,
            keepalive: settings.keepalive, trust: settings.trust, relay: settings.relay)
        configuration.probesReflexiveEndpoint = true
        control = ControlPlane(configuration: configuration, transport: SocketTransport(sockets: sockets),
                               clock: SystemClock(), tables: tables, logger: logger)
        var pollers: [Poller] = []
        var workers: [Worker] = []
        let fatalError = FatalErrorReport(logger: logger, handler: settings.onFatalError)
        self.fatalError = fatalError
        for (index, queue) in queues.enumerated() {
            let poller = try Poller()
            pollers.append(poller)
            let path = try PacketPath(worker: index, localIP: settings.privateIP, control: control,
                                  maximumPacket: Worker.maximumPacket(mtu: settings.mtu))
            workers.append(Worker(index: index, tun: queue, socket: sockets[index], mtu: settings.mtu,
                                  tables: tables, path: path, poller: poller, deviceName: settings.deviceName,
                                  onFatalError: fatalError.report))
        }
        self.pollers = pollers
        self.workers = workers
    }

    /// Why the node cannot go on, once a fatal error happened (see `Settings.onFatalError`).
    public var failure: String? { fatalError.message }

    /// The reflexive endpoints peers report for this node (empty when they see it at its
    /// configured endpoint), to publish in its mapping.
    public func reflexiveCandidates() -> [IPv4Endpoint] {
        control.reflexiveCandidates.current
    }

    /// Starts the control thread and one thread per worker.
    public func start() {
        spawn(name: "quantum-control") { [control] in control.run() }
        for worker in workers {
            spawn(name: "\(Node.workerThreadPrefix)\(worker.index)") { worker.run() }
        }
    }

    /// Worker threads are named this plus their index (a Linux thread name holds 15 bytes:
    /// room for the index, and tests find the workers by it).
    static let workerThreadPrefix = "quantum-wk-"

    private func spawn(name: String, _ body: @escaping @Sendable () -> Void) {
        finished.enter()
        let thread = Thread { [finished] in
            nameCurrentThread(name)
            body()
            finished.leave()
        }
        thread.name = name
        thread.start()
    }

    /// Applies changes to the node's view of the network (this node's own mapping may
    /// be among them). Changes are coalesced per address until the control thread takes
    /// them, so a burst of updates costs memory per address, not per update.
    public func apply(_ updates: [MappingUpdate]) {
        control.enqueue(updates)
    }

    /// Hands the node a revocation list read from the datastore: if the CA signed it and it is
    /// not older than the one in force, the peers it names are cut off (sessions, route, handshakes).
    public func setRevocations(_ list: RevocationList) {
        control.setRevocations(list)
    }

    /// Replaces the holders of floating IPs (floating IP → holder's private address): peers'
    /// floating IPs get routes to their holders, this node's are accepted as destinations.
    public func setFloatingHolders(_ holders: [IPv4Address: IPv4Address]) {
        control.setFloatingHolders(holders)
    }

    /// Whether the published forwarding table has a route to `address` (for tests).
    func hasRoute(to address: IPv4Address) -> Bool {
        control.tables.load().0.routes[address] != nil
    }

    /// Whether packets to `address` go compressed when that shrinks them (for tests).
    func compresses(to address: IPv4Address) -> Bool {
        control.tables.load().0.routes[address]?.compression ?? false
    }

    /// Every counter, summed over workers.
    public func counters() -> CounterReport {
        CounterReport(workers: workers.map(\.counters), control: control.counters)
    }

    /// Every counter and every peer, for the stats endpoint (off the data path; allocates).
    /// The peers are as the control thread describes them at the end of its next turn (waited
    /// for up to ``snapshotWait``; a paused node gives the last description it made).
    public func snapshot() -> NodeSnapshot {
        let published = control.directory.publications
        control.requestDirectory()
        control.directory.waitForPublication(after: published, until: Date(timeIntervalSinceNow: Node.snapshotWait))
        return NodeSnapshot(
            privateIP: control.localIP, publicKey: control.localPublicKey,
            queues: workers.map { worker in
                Dictionary(uniqueKeysWithValues: WorkerCounter.allCases.map { ($0, worker.counters.value($0)) })
            },
            control: Dictionary(uniqueKeysWithValues: ControlCounter.allCases.map { ($0, control.counters.value($0)) }),
            peers: control.peerStates(now: monotonicNanoseconds()))
    }

    /// How long ``snapshot()`` waits for the control thread's description of the peers.
    static let snapshotWait: TimeInterval = 0.5

    /// Freezes the data path for a handover: stops every thread (each worker finishes the
    /// batch in hand) and waits for them, keeping peers, sessions and the table. Packets
    /// that arrive meanwhile wait in the kernel's queues of the TUN device and sockets.
    public func pause() {
        workers.forEach { $0.stop() }
        control.pause()
        finished.wait()
    }

    /// Restarts the threads of a paused node where they stopped.
    public func resume() {
        control.prepareToResume()
        workers.forEach { $0.prepareToResume() }
        start()
    }

    /// The live link of every peer, for the process that replaces this one. Call only
    /// while the node is paused: afterwards this node must not seal with these sessions
    /// again unless the new process is known never to have used them.
    public func links() -> [PeerLink] {
        control.links(now: monotonicNanoseconds())
    }

    /// Before `start()`: installs a handed-over peer map, floating IP holders (floating IP →
    /// holder's private IP) and the links of the process this one replaces (wiping their key
    /// bytes), so the first table the workers see is complete. Returns the sessions installed
    /// and a line per link that was dropped.
    public func restore(mappings: [MappingUpdate], links: inout [PeerLink],
                        floatingHolders: [IPv4Address: IPv4Address] = [:]) -> (sessions: Int, problems: [String]) {
        control.restore(mappings: mappings, links: &links, floatingHolders: floatingHolders, now: monotonicNanoseconds())
    }

    /// Stops every thread and waits for them, wiping session keys.
    public func stop() {
        workers.forEach { $0.stop() }
        control.stop()
        finished.wait()
    }
}

/// The first fatal error of a node: kept, logged and handed to the caller's handler once.
private final class FatalErrorReport: Sendable {
    private let first = Mutex<String?>(nil)
    private let logger: Logger
    private let handler: @Sendable (String) -> Void

    init(logger: Logger, handler: @escaping @Sendable (String) -> Void) {
        self.logger = logger
        self.handler = handler
    }

    var message: String? { first.withLock { $0 } }

    /// Records `message` unless an error was already reported, then logs it and calls the handler.
    func report(_ message: String) {
        let isFirst = first.withLock { stored in
            guard stored == nil else { return false }
            stored = message
            return true
        }
        guard isFirst else { return }
        logger.critical("\(message)")
        handler(message)
    }
}
