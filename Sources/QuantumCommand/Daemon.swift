import Dispatch
import Foundation
import Logging
import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumDevice
import QuantumNode

/// The daemon's lifecycle: checks, identity, datastore registration, device and
/// sockets, the engine, and a clean stop on SIGINT/SIGTERM.
public enum Daemon {
    /// Why the daemon could not start, in one line for the operator.
    public struct StartupError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs a node until SIGINT or SIGTERM.
    public static func run(configuration: Configuration, logger: Logger) async throws {
        // Privileges first: nothing else (etcd included) is touched without them.
        try HostEnvironment.checkTunPrivileges()

        let identity = try Identity.loadOrCreate(dataDir: configuration.dataDir,
                                                 makePrivateKey: { StaticKeyPair.generate().privateKey })
        let keyPair: StaticKeyPair
        do {
            keyPair = try StaticKeyPair(privateKey: identity.privateKey)
        } catch {
            throw StartupError(description: "\(configuration.dataDir)/private.key: \(error)")
        }
        let (publicV4, publicV6) = try publicAddresses(configuration)

        // Sockets before the datastore, so a busy port fails before we claim an address.
        let family: UDPSocket.Family = configuration.disableV6 ? .ipv4 : .ipv6
        var sockets: [UDPSocket] = []
        do {
            for _ in 0..<configuration.workers {
                sockets.append(try UDPSocket(family: family, bindAddress: configuration.listenIP,
                                             port: configuration.listenPort, ipv6Only: configuration.disableV4))
            }
        } catch {
            sockets.forEach { $0.close() }
            throw StartupError(description: "\(error)")
        }
        defer { sockets.forEach { $0.close() } }

        let store = try EtcdClient(configuration: .init(
            endpoints: configuration.datastoreEndpoints, username: configuration.datastoreUsername,
            password: configuration.datastorePassword, tlsCACert: configuration.datastoreTLSCACert,
            tlsCert: configuration.datastoreTLSCert, tlsKey: configuration.datastoreTLSKey,
            tlsSkipVerify: configuration.datastoreTLSSkipVerify), logger: logger)
        do {
            try await serve(configuration: configuration, identity: identity, keyPair: keyPair,
                            publicV4: publicV4, publicV6: publicV6, sockets: sockets, store: store, logger: logger)
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

    /// Runs a start-up step against etcd, waiting out an etcd that cannot be reached or
    /// answers with a server error (backoff 1 s doubling to 30 s); any other error is final.
    private static func retryingWhileUnreachable<T>(logger: Logger, _ step: () async throws -> T) async throws -> T {
        var backoff = Duration.seconds(1)
        while true {
            do {
                return try await step()
            } catch let error as DatastoreError {
                switch error {
                case .unreachable, .http(_, _, 500...599, _), .badResponse:
                    logger.warning("etcd is not usable yet (\(error)); retrying in \(backoff)")
                    try await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(30))
                default:
                    throw error
                }
            }
        }
    }

    private static func serve(configuration: Configuration, identity: Identity, keyPair: StaticKeyPair,
                              publicV4: IPv4Address?, publicV6: IPv6Address?, sockets: [UDPSocket],
                              store: EtcdClient, logger: Logger) async throws {
        let registry = NetworkRegistry(store: store, prefix: configuration.datastorePrefix, logger: logger)
        let network = try await retryingWhileUnreachable(logger: logger) {
            try await registry.bootstrapConfig(proposed: configuration.network)
        }
        let makeMapping = { (address: IPv4Address) in
            Mapping(machineID: identity.machineID, privateIP: address, ipv4: publicV4, ipv6: publicV6,
                    port: configuration.listenPort, publicKey: keyPair.publicKey)
        }
        let preferred: IPv4Address?
        do {
            preferred = try Identity.lastPrivateIP(dataDir: configuration.dataDir)
        } catch {
            logger.warning("\(error); asking for any free address instead")
            preferred = nil
        }
        let lease = try await retryingWhileUnreachable(logger: logger) {
            try await registry.claim(address: configuration.privateIP, mapping: makeMapping, config: network,
                                     machineID: identity.machineID, preferred: preferred)
        }
        do {
            try Identity.recordPrivateIP(lease.address, dataDir: configuration.dataDir)
        } catch {
            logger.warning("could not remember the private address for the next start: \(error)")
        }

        let device: TunDevice
        do {
            device = try TunDevice(namePattern: configuration.deviceName, queueCount: configuration.workers)
            try device.configure(address: lease.address, network: network.network, mtu: configuration.mtu)
        } catch {
            throw StartupError(description: "\(error)")
        }
        defer { device.close() }

        let node = try Node(
            settings: .init(privateIP: lease.address, mtu: configuration.mtu,
                            useIPv4: !configuration.disableV4, useIPv6: !configuration.disableV6),
            keyPair: keyPair, queues: device.queues, sockets: sockets, logger: logger)
        node.start()
        defer { node.stop() }

        let port = sockets[0].localPort
        logger.info("""
            quantum \(QuantumVersion.string) up: device \(device.name) (MTU \(configuration.mtu)), \
            network \(network.network), private IP \(lease.address), \
            public \(publicV4.map { "\($0)" } ?? "-") / \(publicV6.map { "\($0)" } ?? "-"), port \(port), \
            datastore \(configuration.datastoreEndpoints.joined(separator: ",")) prefix \(configuration.datastorePrefix), \
            \(configuration.workers) worker\(configuration.workers == 1 ? "" : "s")
            """)
        logger.warning("""
            no network CA is configured: any mapping in etcd is trusted, so etcd's access control \
            is this network's trust boundary
            """)

        let keepAliveInterval = min(configuration.datastoreSyncInterval, .seconds(max(network.leaseTimeSeconds / 3, 1)))
        let ownMapping = makeMapping(lease.address)
        let signals = SignalWatcher([SIGINT, SIGTERM, SIGUSR1])
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await registry.runKeepAlive(lease: lease, mapping: ownMapping, config: network,
                                            interval: keepAliveInterval)
            }
            group.addTask {
                await registry.runMappingSync(syncInterval: configuration.datastoreSyncInterval) { mappings in
                    node.apply(mappings.map { MappingUpdate(address: $0.key, mapping: $0.value, createRevision: 0) })
                }
            }
            for await signal in signals.stream {
                if signal == SIGUSR1 {
                    logger.info("counters: \(node.counters())")
                    continue
                }
                logger.info("stopping on \(signal == SIGINT ? "SIGINT" : "SIGTERM")")
                break
            }
            group.cancelAll()
        }
        signals.cancel()
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
