import Dispatch
import Foundation
import Logging
import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumDevice
import QuantumNode
import QuantumStats

/// The daemon's lifecycle: checks, identity, datastore registration (or a start from the
/// local cache), device and sockets, the engine, and a clean stop on SIGINT/SIGTERM.
public enum Daemon {
    /// Why the daemon could not start, in one line for the operator.
    public struct StartupError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs a node until SIGINT or SIGTERM; ends with an error when its address is taken by
    /// another machine (the caller exits 1). With `handover`, this process takes over from
    /// the running daemon that started it (rolling restart) instead of starting afresh.
    public static func run(configuration: Configuration, logger: Logger, handover: HandoverChannel? = nil) async throws {
        let pidFile = PidFile(path: configuration.pidFile)
        if handover == nil { try checkPidFile(pidFile, logger: logger) }
        // Privileges first: nothing else (etcd included) is touched without them.
        try HostEnvironment.checkTunPrivileges()

        let identity = try Identity.loadOrCreate(dataDir: configuration.dataDir,
                                                 makePrivateKey: { StaticKeyPair.generate().privateKey },
                                                 notice: { logger.notice("\($0)") })
        let keyPair: StaticKeyPair
        do {
            keyPair = try StaticKeyPair(privateKey: identity.privateKey)
        } catch {
            throw StartupError(description: "\(configuration.dataDir)/private.key: \(error)")
        }
        let trust = try loadTrust(configuration, publicKey: keyPair.publicKey)
        var configuration = configuration
        configuration.privateIP = trust?.certificate.address ?? configuration.privateIP
        let (publicV4, publicV6) = try publicAddresses(configuration)

        // Sockets before the datastore, so a busy port fails before we claim an address.
        let family: UDPSocket.Family = configuration.disableV6 ? .ipv4 : .ipv6
        var sockets: [UDPSocket] = []
        do {
            for _ in 0..<(handover == nil ? configuration.workers : 0) {
                sockets.append(try UDPSocket(family: family, bindAddress: configuration.listenIP,
                                             port: configuration.listenPort, ipv6Only: configuration.disableV4))
            }
        } catch {
            sockets.forEach { $0.close() }
            throw StartupError(description: "\(error)")
        }
        defer { sockets.forEach { $0.close() } }

        let store = try EtcdClient(configuration: configuration.etcd, logger: logger)
        do {
            // A successor asks for the state only now that everything slow is done.
            var takeover: Takeover?
            if let handover {
                takeover = try await Takeover.receive(over: handover, configuration: configuration)
                sockets = takeover?.sockets ?? []
            }
            try await serve(configuration: configuration, identity: identity, keyPair: keyPair, trust: trust,
                            publicV4: publicV4, publicV6: publicV6, sockets: sockets, store: store,
                            takeover: takeover, pidFile: pidFile, logger: logger)
        } catch {
            try? await store.shutdown()
            throw error
        }
        try? await store.shutdown()
    }

    /// The endpoints to publish: the flags, or the addresses of the default-route interfaces.
    private static func publicAddresses(_ configuration: Configuration) throws -> (IPv4Address?, IPv6Address?) {
        let v4 = configuration.disableV4 ? nil : configuration.publicV4 ?? HostEnvironment.defaultRouteIPv4()
        let v6 = configuration.disableV6 ? nil : configuration.publicV6 ?? HostEnvironment.defaultRouteIPv6()
        guard v4 != nil || v6 != nil else {
            throw StartupError(description:
                "no public address: no interface holds a default route with a global address; set --public-v4 or --public-v6")
        }
        return (v4, v6)
    }

    /// True for the failures that mean "etcd is not usable right now" (no endpoint could serve:
    /// refused, silent, or answering 5xx/429; or an answer that is not etcd's), as opposed to a
    /// refusal that retrying cannot fix.
    static func isUnavailable(_ error: any Error) -> Bool {
        switch error as? DatastoreError {
        case .unreachable, .badResponse: return true
        default: return false
        }
    }

    /// Runs a start-up step against etcd, waiting out an etcd that is unavailable
    /// (backoff 1 s doubling to 30 s); any other error is final.
    private static func retryingWhileUnavailable<T>(logger: Logger, _ step: () async throws -> T) async throws -> T {
        var backoff = Duration.seconds(1)
        while true {
            do {
                return try await step()
            } catch where isUnavailable(error) {
                logger.warning("etcd is not usable yet (\(error)); retrying in \(backoff)")
                try await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(30))
            }
        }
    }

    /// How a node comes up when its first attempt to reach etcd failed.
    enum StartPlan: Equatable {
        /// Bring the network up from the local cache under the remembered address, and claim
        /// that address in the background.
        case fromCache(LocalCache, address: IPv4Address)
        /// Wait for etcd, as a node without a usable cache does.
        case waitForDatastore(reason: String)
    }

    /// The start-up decision after a failed first attempt: the cache is used only together
    /// with a remembered address inside its network, and only if `--private-ip` (when given)
    /// names that same address.
    static func plan(cache: LocalCache?, rememberedIP: IPv4Address?, requestedIP: IPv4Address?) -> StartPlan {
        guard let cache else { return .waitForDatastore(reason: "no local cache") }
        guard let rememberedIP else { return .waitForDatastore(reason: "no remembered private address") }
        if let requestedIP, requestedIP != rememberedIP {
            return .waitForDatastore(reason: "--private-ip \(requestedIP) differs from the remembered address \(rememberedIP)")
        }
        guard cache.config.network.contains(rememberedIP) else {
            return .waitForDatastore(reason: "the remembered address \(rememberedIP) is outside the cached network \(cache.config.network)")
        }
        return .fromCache(cache, address: rememberedIP)
    }

    /// What the node comes up with: its address, the network, the peers it starts with, and the
    /// lease when the address is already claimed (nil when it came up from the local cache).
    struct Registration {
        var address: IPv4Address
        var network: NetworkConfig
        var peers: [MappingUpdate]
        var lease: Lease?
        var source: String
    }

    /// How often the local cache is rewritten at most while the map changes.
    static let cacheWritePeriod = Duration.seconds(2)

    private static func serve(configuration: Configuration, identity: Identity, keyPair: StaticKeyPair, trust: NodeTrust?,
                              publicV4: IPv4Address?, publicV6: IPv6Address?, sockets: [UDPSocket],
                              store: EtcdClient, takeover: Takeover?, pidFile: PidFile, logger: Logger) async throws {
        let registry = NetworkRegistry(store: store, prefix: configuration.datastorePrefix, logger: logger,
                                       isUsurper: { holder in trust.map { $0.isUsurper(holder) } ?? false })
        let makeMapping = { @Sendable (address: IPv4Address) in
            Mapping(machineID: identity.machineID, privateIP: address, ipv4: publicV4, ipv6: publicV6,
                    port: configuration.listenPort, publicKey: keyPair.publicKey,
                    plugins: configuration.plugins.map(\.rawValue), floating: configuration.floatingIPs,
                    certificate: trust?.certificate.base64,
                    relay: configuration.relay)
        }
        let preferred: IPv4Address?
        do {
            preferred = try Identity.lastPrivateIP(dataDir: configuration.dataDir)
        } catch {
            logger.warning("\(error); asking for any free address instead")
            preferred = nil
        }
        let registration = if let takeover { takeover.registration } else {
            try await register(configuration: configuration, registry: registry, identity: identity,
                               preferred: preferred, makeMapping: makeMapping, logger: logger)
        }
        let address = registration.address
        try await checkRoutingRoles(configuration, network: registration.network, registry: registry, store: store,
                                    cached: registration.peers, logger: logger)

        let device: TunDevice
        do {
            device = try takeover?.device ?? TunDevice(namePattern: configuration.deviceName, queueCount: configuration.workers,
                                                        offload: configuration.offload)
            if takeover == nil {
                try device.configure(address: address, network: registration.network.network, mtu: configuration.mtu)
            }
        } catch {
            throw StartupError(description: "\(error)")
        }
        defer { device.close() }

        // A peer whose mapping left etcd keeps its links for two sync intervals: a wiped
        // prefix is re-registered by every node within one, and no link drops meanwhile.
        let (fatalErrors, reportFatal) = AsyncStream<String>.makeStream()
        let node = try Node(
            settings: .init(privateIP: address, mtu: configuration.mtu,
                            useIPv4: !configuration.disableV4, useIPv6: !configuration.disableV6,
                            removalGrace: nanoseconds(configuration.datastoreSyncInterval * 2),
                            deviceName: device.name, onFatalError: { reportFatal.yield($0) },
                            compression: configuration.compression,
                            network: registration.network.network, gateway: configuration.gateway,
                            servesGateway: configuration.serveGateway,
                            keepalive: nanoseconds(.seconds(configuration.keepalive)), trust: trust?.trust,
                            relay: configuration.relay),
            keyPair: keyPair, queues: device.queues, sockets: sockets, logger: logger)
        let floating = floatingElection(configuration, store: store, address: address, machineID: identity.machineID,
                                        network: registration.network, logger: logger)
        if let takeover {
            if let handed = takeover.state.floating { floating.adopt(handed) }
            try takeover.confirmRunning(node: node, floatingHolders: floating.holders(), pidFile: pidFile, logger: logger)
        } else if !registration.peers.isEmpty {
            node.apply(registration.peers)
        }
        node.start()
        defer { node.stop() }
        takeover?.logFreeze(logger: logger)
        let stats: StatsServer?
        do {
            stats = try await startStatsEndpoint(configuration: configuration, node: node, registry: registry, logger: logger)
        } catch where takeover != nil {
            // The predecessor is gone: better a node without its stats than no node.
            logger.error("\(error); running without the stats endpoint until the next reload or restart")
            stats = nil
        }
        defer { stats?.stop() }
        let roles = try GatewayRoles.setUp(configuration, device: device.name, network: registration.network.network,
                                           sockets: sockets, logger: logger)
        defer { roles.tearDown(logger: logger) }

        let port = sockets[0].localPort
        logger.info("""
            quantum \(QuantumVersion.string) up: device \(device.name) (MTU \(configuration.mtu)), \
            network \(registration.network.network), private IP \(address), \
            public \(publicV4.map { "\($0)" } ?? "-") / \(publicV6.map { "\($0)" } ?? "-"), port \(port), \
            datastore \(configuration.datastoreEndpoints.joined(separator: ",")) prefix \(configuration.datastorePrefix), \
            \(configuration.workers) worker\(configuration.workers == 1 ? "" : "s"), peer map from \(registration.source)
            """)
        logger.info("\(offloadSummary(configuration, device: device, socket: sockets[0]))")
        warnAboutTrust(configuration, trust: trust, logger: logger)
        let notifier = ServiceNotifier(environment: ProcessInfo.processInfo.environment)
        let lease = LeaseRecord()
        try announceUp(takeover: takeover, pidFile: pidFile, notifier: notifier, logger: logger)
        defer { pidFile.remove(ifHolding: getpid()) }
        let restart = RollingRestart(configuration: configuration, node: node, device: device, sockets: sockets,
                                     address: address, network: registration.network, lease: lease,
                                     registry: registry, floating: floating, notifier: notifier, logger: logger)

        let signals = SignalWatcher([SIGINT, SIGTERM, SIGUSR1, SIGHUP])
        defer { signals.cancel() }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await runRegistered(registration, configuration: configuration, registry: registry,
                                            makeMapping: makeMapping, node: node, lease: lease, logger: logger)
                }
                group.addTask {
                    for await signal in signals.stream {
                        switch signal {
                        case SIGUSR1: logger.info("counters: \(node.counters())")
                        case SIGHUP:
                            // The successor owns the device, mapping, lease and pid file now: no clean-up.
                            if await restart.perform() { exit(0) }
                        default:
                            logger.info("stopping on \(signal == SIGINT ? "SIGINT" : "SIGTERM")")
                            if let problem = notifier.stopping() { logger.warning("\(problem)") }
                            return
                        }
                    }
                }
                group.addTask {
                    for await message in fatalErrors { throw StartupError(description: message) }
                }
                if let trust {
                    group.addTask {
                        try await followRevocations(store: store, registry: registry, trust: trust, node: node,
                                                    syncInterval: configuration.datastoreSyncInterval, logger: logger)
                    }
                }
                group.addTask { [deviceName = device.name] in
                    await runFloatingIPs(floating, node: node, device: deviceName,
                                         syncInterval: configuration.datastoreSyncInterval, logger: logger)
                }
                // The first to end: a stop signal, the datastore side with an error, or a
                // data-path failure the engine cannot recover from.
                try await group.next()
                group.cancelAll()
            }
            await releaseFloatingIPs(floating)
        } catch let error as RegistryError {
            throw StartupError(description: error.description)
        }
    }

    /// A non-negative duration in whole nanoseconds, saturating at `UInt64.max`.
    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : whole.addingReportingOverflow(UInt64(attoseconds / 1_000_000_000)).partialValue
    }

    /// Registers the node: bootstraps the configuration and claims an address; when etcd is
    /// unavailable at the first attempt, comes up from the local cache if ``plan(cache:rememberedIP:requestedIP:)``
    /// allows it, and otherwise waits for etcd.
    private static func register(configuration: Configuration, registry: NetworkRegistry, identity: Identity,
                                 preferred: IPv4Address?, makeMapping: (IPv4Address) -> Mapping,
                                 logger: Logger) async throws -> Registration {
        let network: NetworkConfig
        do {
            network = try await registry.bootstrapConfig(proposed: configuration.network)
        } catch where isUnavailable(error) {
            let cache: LocalCache?
            do {
                cache = try LocalCache.load(dataDir: configuration.dataDir)
            } catch {
                logger.warning("ignoring the local cache: \(error)")
                cache = nil
            }
            switch plan(cache: cache, rememberedIP: preferred, requestedIP: configuration.privateIP) {
            case .fromCache(let cache, let address):
                let peers = cache.mappings.count { $0.address != address }
                logger.info("""
                    etcd is unavailable (\(error)); starting from the local cache as \(address) \
                    with \(peers) peer\(peers == 1 ? "" : "s")
                    """)
                return Registration(address: address, network: cache.config, peers: cache.mappings, lease: nil,
                                    source: "the local cache")
            case .waitForDatastore(let reason):
                logger.warning("etcd is not usable yet (\(error)); not starting from the local cache: \(reason)")
                network = try await retryingWhileUnavailable(logger: logger) {
                    try await registry.bootstrapConfig(proposed: configuration.network)
                }
            }
        }
        let lease = try await retryingWhileUnavailable(logger: logger) {
            try await registry.claim(address: configuration.privateIP, mapping: makeMapping, config: network,
                                     machineID: identity.machineID, preferred: preferred)
        }
        remember(lease.address, configuration: configuration, logger: logger)
        return Registration(address: lease.address, network: network, peers: [], lease: lease, source: "etcd")
    }

    private static func remember(_ address: IPv4Address, configuration: Configuration, logger: Logger) {
        do {
            try Identity.recordPrivateIP(address, dataDir: configuration.dataDir)
        } catch {
            logger.warning("could not remember the private address for the next start: \(error)")
        }
    }

    /// The datastore side of a running node: claims the address first if the node came up from
    /// the local cache, then keeps the lease alive, follows the map into the engine and keeps
    /// the local cache. Ends only by cancellation, or with ``RegistryError/addressLost(_:machineID:)``.
    private static func runRegistered(_ registration: Registration, configuration: Configuration,
                                      registry: NetworkRegistry, makeMapping: @escaping @Sendable (IPv4Address) -> Mapping,
                                      node: Node, lease leaseRecord: LeaseRecord, logger: Logger) async throws {
        let address = registration.address
        var network = registration.network
        let lease: Lease
        if let claimed = registration.lease {
            lease = claimed
        } else {
            network = try await retryingWhileUnavailable(logger: logger) {
                try await registry.bootstrapConfig(proposed: registration.network)
            }
            if network.network != registration.network.network {
                logger.error("""
                    the network in etcd (\(network.network)) differs from the cached one this node runs with \
                    (\(registration.network.network)); restart the node to follow it
                    """)
            }
            lease = try await retryingWhileUnavailable(logger: logger) {
                try await registry.reclaim(address, mapping: makeMapping(address), config: network)
            }
        }
        leaseRecord.record(lease)
        let inForce = network
        let (keepAliveInterval, refreshWarning) = refreshInterval(configuration, leaseTimeSeconds: inForce.leaseTimeSeconds)
        if let refreshWarning { logger.warning("\(refreshWarning)") }
        let cacheWriter = CacheWriter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await registry.runKeepAlive(lease: lease, mapping: makeMapping(address), config: inForce,
                                                interval: keepAliveInterval, onRenew: leaseRecord.record)
            }
            group.addTask {
                await registry.runMappingSync(config: inForce, syncInterval: configuration.datastoreSyncInterval,
                                              alreadyDelivered: registration.peers) { updates in
                    node.apply(updates)
                    cacheWriter.markChanged()
                }
            }
            group.addTask {
                await publishReflexiveEndpoints(node: node, registry: registry, address: address, makeMapping: makeMapping,
                                                lease: leaseRecord, verifyInterval: keepAliveInterval, logger: logger)
            }
            group.addTask {
                await cacheWriter.run(ticks: CacheWriter.ticks(every: cacheWritePeriod), logger: logger,
                                      snapshot: { LocalCache(config: inForce, mappings: registry.deliveredMappings()) },
                                      write: { try $0.save(dataDir: configuration.dataDir) })
            }
            try await group.next()
            group.cancelAll()
        }
    }
}

/// Turns process signals into an async stream (the default action of each is disabled).
final class SignalWatcher: @unchecked Sendable {
    // @unchecked: `sources` is set once in init and only cancelled afterwards;
    // dispatch sources are thread-safe.
    let stream: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    init(_ numbers: [Int32]) {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        self.stream = stream
        sources = numbers.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }

    func cancel() {
        sources.forEach { $0.cancel() }
    }
}
