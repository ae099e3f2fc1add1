import Foundation
import Logging
import QuantumCore
import QuantumDatastore
import QuantumDevice
import QuantumNode
import Synchronization

// Floating IPs and gateway mode (issue 6 §1 and §2): the start-up checks, the floating IP
// election wired to the device and the engine, and the host routing of the gateway roles.
extension Daemon {
    /// How long a `--forward` node waits at start-up for its `--gateway` to appear in the map
    /// of nodes before it refuses to start: long enough for a gateway started at the same
    /// time to register, short enough that a mistyped address is reported promptly.
    static let gatewayWait = Duration.seconds(10)

    /// Checks the floating IPs against the network in force (etcd's copy wins over the flags,
    /// which were checked already) and waits for the gateway node to be known: in the local
    /// cache the node started from, or in etcd within ``gatewayWait``.
    static func checkRoutingRoles(_ configuration: Configuration, network: NetworkConfig, registry: NetworkRegistry,
                                  store: any Datastore, cached: [MappingUpdate], logger: Logger) async throws {
        for address in configuration.floatingIPs {
            if let problem = network.floatingIPProblem(address) {
                throw StartupError(description: "--floating-ips: \(address) \(problem) (the network stored in etcd)")
            }
        }
        guard let gateway = configuration.gateway else { return }
        guard network.network.contains(gateway) else {
            throw StartupError(description: "--gateway \(gateway) is outside the network \(network.network) stored in etcd")
        }
        if cached.contains(where: { $0.address == gateway && $0.mapping != nil }) { return }
        let deadline = ContinuousClock.now + gatewayWait
        while true {
            if let item = try? await store.get(registry.nodeKey(gateway)), (try? Mapping.parse(json: item.value)) != nil {
                return
            }
            guard ContinuousClock.now < deadline else {
                throw StartupError(description: """
                    --gateway \(gateway) is not a known node: no mapping at \(registry.nodeKey(gateway)) after \
                    \(gatewayWait); start the gateway node (with --serve-gateway) first, or fix the address
                    """)
            }
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// The floating IP election of this node (it follows the holders even without candidates).
    static func floatingElection(_ configuration: Configuration, store: any Datastore, address: IPv4Address,
                                 machineID: String, network: NetworkConfig, logger: Logger) -> FloatingIPElection {
        FloatingIPElection(store: store, prefix: configuration.datastorePrefix,
                           me: FloatingHolder(privateIP: address, machineID: machineID),
                           candidates: configuration.floatingIPs, ttlSeconds: configuration.datastoreFloatingIPTTL,
                           floatingRange: network.floatingRange, logger: logger)
    }

    /// Runs the election until cancelled: every change of holders goes to the engine (routes
    /// and accepted addresses) and the floating IPs this node holds onto its device.
    static func runFloatingIPs(_ election: FloatingIPElection, node: Node, device: String,
                               syncInterval: Duration, logger: Logger) async {
        let onDevice = DeviceFloatingAddresses(device: device, logger: logger)
        let me = election.me.privateIP
        // CLOCK_MONOTONIC, shared with the successor of a rolling restart (see FloatingIPElection.Handover).
        await election.run(clock: monotonicNanoseconds, syncInterval: syncInterval) { holders in
            onDevice.update(to: Set(holders.filter { $0.value == me }.keys))
            node.setFloatingHolders(holders)
        }
    }

    /// Releases the floating IPs at a clean stop (outside the cancelled tasks, so the request is sent).
    static func releaseFloatingIPs(_ election: FloatingIPElection) async {
        await Task { await election.release() }.value
    }
}

/// The floating IPs on the TUN device, kept equal to the ones this node holds.
final class DeviceFloatingAddresses: Sendable {
    private let device: String
    private let logger: Logger
    private let present = Mutex<Set<IPv4Address>>([])

    init(device: String, logger: Logger) {
        self.device = device
        self.logger = logger
    }

    /// Removes what is no longer held, then adds what is newly held; failures are logged.
    func update(to wanted: Set<IPv4Address>) {
        present.withLock { present in
            for address in present.subtracting(wanted) {
                do {
                    try InterfaceAddress.remove(address, from: device)
                    logger.info("floating IP \(address) removed from \(device)")
                } catch {
                    logger.error("could not remove floating IP \(address) from \(device): \(error)")
                }
                present.remove(address)
            }
            for address in wanted.subtracting(present) {
                do {
                    try InterfaceAddress.add(address, to: device)
                    present.insert(address)
                    logger.info("floating IP \(address) added to \(device)")
                } catch {
                    logger.error("could not add floating IP \(address) to \(device): \(error)")
                }
            }
        }
    }
}

/// What the gateway roles changed on the host, undone by ``tearDown(logger:)``.
struct GatewayRoles {
    let configuration: Configuration
    let device: String

    /// The file that keeps the IPv4 forwarding setting found before serving as gateway.
    var savedForwarding: String { "\(configuration.dataDir)/ip-forward.saved" }

    /// Sets up the host for `--forward` (marked sockets, policy routing, etcd kept on the
    /// underlay) or `--serve-gateway` (forwarding and masquerading), after clearing what a
    /// crashed run left. Nothing to do for a node with neither.
    static func setUp(_ configuration: Configuration, device: String, network: IPv4Prefix, sockets: [UDPSocket],
                      logger: Logger) throws -> GatewayRoles {
        let roles = GatewayRoles(configuration: configuration, device: device)
        do {
            if let gateway = configuration.gateway {
                for socket in sockets { try socket.setMark(GatewayClientRouting.mark) }
                let etcd = etcdAddresses(configuration.datastoreEndpoints, logger: logger)
                let pinned = try GatewayClientRouting.install(device: device, keepOnUnderlay: etcd)
                logger.info("""
                    forwarding traffic without a more specific route through gateway \(gateway) \
                    (table \(GatewayClientRouting.table), rules \(GatewayClientRouting.suppressPriority)/\
                    \(GatewayClientRouting.tunnelPriority)); etcd kept on the underlay via /32 routes to \
                    \(pinned.isEmpty ? "none needed" : pinned.map(\.description).joined(separator: ", "))
                    """)
            } else {
                GatewayClientRouting.remove()
            }
            if configuration.serveGateway {
                try GatewayServerForwarding.install(device: device, network: network, savedForwarding: roles.savedForwarding)
                logger.info("""
                    serving as gateway: IPv4 forwarding on, peers' traffic for outside \(network) masqueraded \
                    (nftables table inet \(GatewayServerForwarding.tableName(device: device)))
                    """)
            } else {
                roles.undoServing(logger: logger)
            }
        } catch {
            roles.tearDown(logger: logger)
            throw Daemon.StartupError(description: "gateway mode: \(error)")
        }
        return roles
    }

    /// Removes the rules, routes and table and restores IPv4 forwarding.
    func tearDown(logger: Logger) {
        if configuration.gateway != nil { GatewayClientRouting.remove() }
        undoServing(logger: logger)
    }

    private func undoServing(logger: Logger) {
        for problem in GatewayServerForwarding.remove(device: device, savedForwarding: savedForwarding) {
            logger.error("gateway mode clean-up: \(problem)")
        }
    }

    /// The IPv4 addresses of the etcd endpoints; a name is reported, since only addresses
    /// can be kept on the underlay here.
    static func etcdAddresses(_ endpoints: [String], logger: Logger) -> [IPv4Address] {
        endpoints.compactMap { endpoint in
            var host = Substring(endpoint)
            if let scheme = host.range(of: "://") { host = host[scheme.upperBound...] }
            host = host.prefix { $0 != ":" && $0 != "/" }
            if let address = IPv4Address(host) { return address }
            logger.warning("""
                --forward: etcd endpoint \(endpoint) is not an IPv4 address, so it is not pinned to the underlay; \
                it must be reachable through a route more specific than the default route
                """)
            return nil
        }
    }
}
