import Foundation
import Logging
import QuantumCore

/// The daemon's settings after every source has been read and validated (DESIGN.md §6).
///
/// Precedence, highest first: command line, environment (`QUANTUM_*`), `--conf-file`,
/// built-in defaults. Every value, whatever its source, goes through the same parser in
/// ``OptionTable``.
public struct Configuration: Sendable, Equatable {
    /// TUN device name; `%d` lets the kernel pick the number.
    public var deviceName: String
    /// Packet worker threads, resolved: never 0.
    public var workers: Int
    /// The private address to claim; `nil` to lease one from the dynamic range.
    public var privateIP: IPv4Address?
    /// The address to bind the UDP socket to, canonical text; `nil` for all addresses.
    public var listenIP: String?
    /// The UDP port.
    public var listenPort: UInt16
    /// The public IPv4 address to advertise, if given.
    public var publicV4: IPv4Address?
    /// The public IPv6 address to advertise, if given.
    public var publicV6: IPv6Address?
    /// Do not use IPv4 to reach peers.
    public var disableV4: Bool
    /// Do not use IPv6 to reach peers.
    public var disableV6: Bool
    /// Directory for the identity files.
    public var dataDir: String
    /// etcd endpoints, `host:port` or URLs.
    public var datastoreEndpoints: [String]
    /// etcd key prefix, `/quantum`.
    public var datastorePrefix: String
    /// Time between full resyncs of the datastore cache.
    public var datastoreSyncInterval: Duration
    /// etcd user name.
    public var datastoreUsername: String?
    /// etcd password.
    public var datastorePassword: String?
    /// PEM file of the CA for the etcd server certificate.
    public var datastoreTLSCACert: String?
    /// PEM client certificate for etcd.
    public var datastoreTLSCert: String?
    /// PEM key of the client certificate.
    public var datastoreTLSKey: String?
    /// Do not verify the etcd server certificate.
    public var datastoreTLSSkipVerify: Bool
    /// The network definition this node proposes (the datastore's copy wins if one exists).
    public var network: NetworkConfig
    /// TUN MTU in bytes.
    public var mtu: Int
    /// Log level.
    public var logLevel: Logger.Level
    /// Address of the stats endpoint, canonical text.
    public var statsAddress: String
    /// TCP port of the stats endpoint; 0 when it is off.
    public var statsPort: UInt16
    /// Path of the upstream-style JSON statistics.
    public var statsRoute: String
    /// The plugins this node advertises in its mapping (`--plugins`), without duplicates.
    public var plugins: [Plugin]
    /// How often the address lease (and with it the mapping) is renewed in etcd.
    public var datastoreRefreshInterval: Duration

    /// Whether this node offers LZ4 compression to its peers.
    public var compression: Bool { plugins.contains(.compression) }
    /// Where the running daemon's PID is written.
    public var pidFile: String
    /// Floating IPs this node competes for (inside the network's floating range).
    public var floatingIPs: [IPv4Address] = []
    /// Lease time of a floating IP, in seconds.
    public var datastoreFloatingIPTTL: Int64 = 10
    /// Gateway client: send traffic without a more specific route to ``gateway``.
    public var forward = false
    /// The gateway node's private IP (set whenever ``forward`` is).
    public var gateway: IPv4Address?
    /// Gateway server: forward and masquerade peers' traffic for outside the network.
    public var serveGateway = false
    /// Seconds without sending after which an established link gets a keepalive (NAT
    /// bindings); 0 = off.
    public var keepalive: Int64 = 25
    /// The network CA's certificate file (`--network-ca-cert`); set together with `nodeCert`.
    public var networkCACert: String?
    /// This node's certificate file (`--node-cert`); set together with `networkCACert`.
    public var nodeCert: String?
    /// Whether this node offers itself as relay between peers that cannot reach each other directly.
    public var relay = false
    /// Whether the TUN device and UDP sockets use the kernel's offloads (`--offload`).
    public var offload = true

    /// The `QUANTUM_*` variables in `environment` that name no option (most likely
    /// mistyped), sorted, each with the option variable it most resembles, if any is close.
    public static func unknownEnvironmentVariables(in environment: [String: String]) -> [(name: String, suggestion: String?)] {
        let known = OptionTable.all.map(\.environmentVariable)
        return environment.keys
            .filter { $0.hasPrefix(OptionSpec.environmentPrefix) && !known.contains($0) }
            .sorted()
            .map { name in
                let (distance, closest) = known.map { (editDistance(name, $0), $0) }.min { $0.0 < $1.0 } ?? (.max, "")
                return (name, distance <= 3 ? closest : nil)
            }
    }

    /// Levenshtein distance between two names (variable names are short).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let b = Array(b.utf8)
        var previous = Array(0...b.count)
        for (i, x) in a.utf8.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }

    /// Resolves the configuration from its sources without touching the process.
    ///
    /// - Parameters:
    ///   - commandLine: values given on the command line, keyed by long option name
    ///     (`listen-port`); a flag that was given has the value `true`.
    ///   - environment: the process environment; only `QUANTUM_*` variables are read.
    ///   - fileReader: reads the `--conf-file`.
    ///   - coreCount: CPU cores, for `--workers 0` (one worker per two cores).
    public static func resolve(
        commandLine: [String: String],
        environment: [String: String],
        fileReader: (String) throws -> Data = Configuration.readFile,
        coreCount: Int = ProcessInfo.processInfo.activeProcessorCount
    ) throws(ConfigurationError) -> Configuration {
        var sources = Sources(commandLine: commandLine, environment: environment, file: [:], filePath: nil)
        if let (path, _) = try sources.value(OptionTable.confFile) {
            sources.file = try ConfigurationFile.load(path: path, reader: fileReader)
            sources.filePath = path
        }

        let workers = try sources.required(OptionTable.workers).value
        let disableV4 = try sources.required(OptionTable.disableV4)
        let disableV6 = try sources.required(OptionTable.disableV6)
        if disableV4.value, disableV6.value {
            throw .conflict("--disable-v4 (\(disableV4.origin)) and --disable-v6 (\(disableV6.origin)) cannot both be set: "
                + "peers must be reachable over IPv4 or IPv6")
        }
        let publicV4 = try sources.value(OptionTable.publicV4)
        let publicV6 = try sources.value(OptionTable.publicV6)
        if let publicV4, disableV4.value {
            throw .conflict("--public-v4 \(publicV4.value) (\(publicV4.origin)) conflicts with --disable-v4 (\(disableV4.origin))")
        }
        if let publicV6, disableV6.value {
            throw .conflict("--public-v6 \(publicV6.value) (\(publicV6.origin)) conflicts with --disable-v6 (\(disableV6.origin))")
        }

        let tlsCert = try sources.value(OptionTable.datastoreTLSCert)
        let tlsKey = try sources.value(OptionTable.datastoreTLSKey)
        if let tlsCert, tlsKey == nil {
            throw .conflict("--datastore-tls-cert \(tlsCert.value) (\(tlsCert.origin)) is set without --datastore-tls-key: "
                + "a client certificate needs its private key")
        }
        if let tlsKey, tlsCert == nil {
            throw .conflict("--datastore-tls-key \(tlsKey.value) (\(tlsKey.origin)) is set without --datastore-tls-cert: "
                + "a client key needs its certificate")
        }

        let network = try resolveNetwork(sources)
        let refreshInterval = try resolveRefreshInterval(sources, leaseTimeSeconds: network.leaseTimeSeconds)
        try refuseUpstreamOnlySettings(sources)
        // Whether the address fits the network is checked against the network stored in
        // etcd, which wins over these flags (NetworkRegistry.claim).
        let privateIP = try sources.value(OptionTable.privateIP)
        let gateway = try resolveGateway(sources, network: network, privateIP: privateIP?.value)
        let trustFiles = try resolveTrustFiles(sources)

        return Configuration(
            deviceName: try sources.required(OptionTable.deviceName).value,
            workers: workers == 0 ? min(max(coreCount / 2, 1), 64) : workers,
            privateIP: privateIP?.value,
            listenIP: try sources.value(OptionTable.listenIP)?.value,
            listenPort: try sources.required(OptionTable.listenPort).value,
            publicV4: publicV4?.value,
            publicV6: publicV6?.value,
            disableV4: disableV4.value,
            disableV6: disableV6.value,
            dataDir: try sources.required(OptionTable.dataDir).value,
            datastoreEndpoints: try sources.required(OptionTable.datastoreEndpoints).value,
            datastorePrefix: try sources.required(OptionTable.datastorePrefix).value,
            datastoreSyncInterval: .milliseconds(try sources.required(OptionTable.datastoreSyncInterval).value),
            datastoreUsername: try sources.value(OptionTable.datastoreUsername)?.value,
            datastorePassword: try sources.value(OptionTable.datastorePassword)?.value,
            datastoreTLSCACert: try sources.value(OptionTable.datastoreTLSCACert)?.value,
            datastoreTLSCert: tlsCert?.value,
            datastoreTLSKey: tlsKey?.value,
            datastoreTLSSkipVerify: try sources.required(OptionTable.datastoreTLSSkipVerify).value,
            network: network,
            mtu: try sources.required(OptionTable.mtu).value,
            logLevel: try sources.required(OptionTable.logLevel).value,
            statsAddress: try sources.required(OptionTable.statsAddress).value,
            statsPort: try sources.required(OptionTable.statsPort).value,
            statsRoute: try sources.required(OptionTable.statsRoute).value,
            plugins: try resolvePlugins(sources),
            datastoreRefreshInterval: refreshInterval,
            pidFile: try sources.required(OptionTable.pidFile).value,
            floatingIPs: try resolveFloatingIPs(sources, network: network),
            datastoreFloatingIPTTL: try sources.required(OptionTable.datastoreFloatingIPTTL).value,
            forward: gateway.forward,
            gateway: gateway.address,
            serveGateway: gateway.serve,
            keepalive: try sources.required(OptionTable.keepalive).value,
            networkCACert: trustFiles.caCert,
            nodeCert: trustFiles.nodeCert,
            relay: try sources.required(OptionTable.relay).value,
            offload: try sources.required(OptionTable.offload).value)
    }

    /// The floating IPs, each checked against the proposed network (the daemon checks them
    /// again against the network stored in etcd).
    private static func resolveFloatingIPs(_ sources: Sources, network: NetworkConfig) throws(ConfigurationError) -> [IPv4Address] {
        guard let (addresses, origin) = try sources.value(OptionTable.floatingIPs) else { return [] }
        for address in addresses {
            if let problem = network.floatingIPProblem(address) {
                throw .conflict("--floating-ips (\(origin)): \(address) \(problem)")
            }
        }
        return addresses
    }

    /// `--forward`, `--gateway` and `--serve-gateway`, checked together.
    private static func resolveGateway(_ sources: Sources, network: NetworkConfig, privateIP: IPv4Address?)
        throws(ConfigurationError) -> (forward: Bool, address: IPv4Address?, serve: Bool) {
        let forward = try sources.required(OptionTable.forward)
        let serve = try sources.required(OptionTable.serveGateway)
        let gateway = try sources.value(OptionTable.gateway)
        guard forward.value else {
            if let gateway {
                throw .conflict("--gateway \(gateway.value) (\(gateway.origin)) is set without --forward: "
                    + "add --forward to send traffic through it")
            }
            return (false, nil, serve.value)
        }
        if serve.value {
            throw .conflict("--forward (\(forward.origin)) and --serve-gateway (\(serve.origin)) cannot both be set: "
                + "a node either uses a gateway or is one")
        }
        guard let gateway else {
            throw .conflict("--forward (\(forward.origin)) needs --gateway: the private IP of the node that serves as gateway")
        }
        guard network.network.contains(gateway.value) else {
            throw .conflict("--gateway \(gateway.value) (\(gateway.origin)) is outside the network \(network.network)")
        }
        if gateway.value == privateIP {
            throw .conflict("--gateway \(gateway.value) (\(gateway.origin)) is this node's own --private-ip")
        }
        return (true, gateway.value, false)
    }

    /// Reads a config file from disk.
    public static func readFile(_ path: String) throws -> Data {
        guard let bytes = try FileSystem.read(path, limit: ConfigurationFile.sizeLimit) else {
            throw FileSystem.Failure(description: "no such file")
        }
        return Data(bytes)
    }

    /// `--network-ca-cert` and `--node-cert`: both or neither.
    private static func resolveTrustFiles(_ sources: Sources) throws(ConfigurationError) -> (caCert: String?, nodeCert: String?) {
        let caCert = try sources.value(OptionTable.networkCACert)
        let nodeCert = try sources.value(OptionTable.nodeCert)
        if let caCert, nodeCert == nil {
            throw .conflict("--network-ca-cert \(caCert.value) (\(caCert.origin)) is set without --node-cert: "
                + "a node in a network with a CA needs its own certificate")
        }
        if let nodeCert, caCert == nil {
            throw .conflict("--node-cert \(nodeCert.value) (\(nodeCert.origin)) is set without --network-ca-cert: "
                + "peers' certificates cannot be checked without the CA's")
        }
        return (caCert?.value, nodeCert?.value)
    }

    /// The plugins named by `--plugins`, each once; an unknown name is refused by name.
    private static func resolvePlugins(_ sources: Sources) throws(ConfigurationError) -> [Plugin] {
        guard let (names, origin) = try sources.value(OptionTable.plugins) else { return [] }
        var plugins: [Plugin] = []
        for name in names {
            guard let plugin = Plugin(rawValue: name) else {
                throw .invalidValue(option: OptionTable.plugins.spec.name, value: name, origin: origin,
                                    expected: "a plugin name: " + Plugin.allCases.map(\.rawValue).joined(separator: " or "))
            }
            if !plugins.contains(plugin) { plugins.append(plugin) }
        }
        return plugins
    }

    /// `--datastore-refresh-interval`, which must be shorter than the lease it renews; the
    /// built-in default (120 s) gives way to a third of a shorter lease time.
    private static func resolveRefreshInterval(_ sources: Sources,
                                               leaseTimeSeconds: Int64) throws(ConfigurationError) -> Duration {
        let refresh = try sources.required(OptionTable.datastoreRefreshInterval)
        if refresh.origin == .builtInDefault {
            return .milliseconds(min(refresh.value, leaseTimeSeconds * 1000 / 3))
        }
        guard refresh.value < leaseTimeSeconds * 1000 else {
            let leaseTime = try sources.required(OptionTable.networkLeaseTime)
            throw .conflict("""
                --datastore-refresh-interval \(Duration.milliseconds(refresh.value)) (\(refresh.origin)) \
                must be shorter than --network-lease-time \(DurationText.format(seconds: leaseTimeSeconds)) \
                (\(leaseTime.origin)): the lease would expire before it is renewed
                """)
        }
        return .milliseconds(refresh.value)
    }

    /// Upstream settings with no counterpart here: `--datastore` other than etcd's v3 API,
    /// `--network-backend` other than udp, and any `--dtls-*` option are refused in one line.
    private static func refuseUpstreamOnlySettings(_ sources: Sources) throws(ConfigurationError) {
        _ = try sources.required(OptionTable.datastore)
        _ = try sources.required(OptionTable.networkBackend)
        _ = try sources.value(OptionTable.dtlsSkipVerify)
        _ = try sources.value(OptionTable.dtlsCACert)
        _ = try sources.value(OptionTable.dtlsCert)
        _ = try sources.value(OptionTable.dtlsKey)
    }

    private static func resolveNetwork(_ sources: Sources) throws(ConfigurationError) -> NetworkConfig {
        let network = try sources.required(OptionTable.network)
        let staticRange = try sources.required(OptionTable.networkStaticRange)
        let floatingRange = try sources.required(OptionTable.networkFloatingRange)
        let leaseTime = try sources.required(OptionTable.networkLeaseTime)
        do {
            return try NetworkConfig(network: network.value, staticRange: staticRange.value,
                                     floatingRange: floatingRange.value, leaseTimeSeconds: leaseTime.value)
        } catch {
            let settings = [
                "--network \(network.value) (\(network.origin))",
                "--network-static-range \(staticRange.value) (\(staticRange.origin))",
                "--network-floating-range \(floatingRange.value) (\(floatingRange.origin))",
                "--network-lease-time \(DurationText.format(seconds: leaseTime.value)) (\(leaseTime.origin))",
            ]
            throw .conflict("invalid network: \(error); given \(settings.joined(separator: ", "))")
        }
    }
}

/// The raw text of every source, and the lookup that applies their precedence.
private struct Sources {
    var commandLine: [String: String]
    var environment: [String: String]
    var file: [String: String]
    var filePath: String?

    /// The text that wins for `spec`, and where it came from; `nil` when nothing sets it.
    func text(for spec: OptionSpec) -> (text: String, origin: ValueOrigin)? {
        if let text = commandLine[spec.name] { return (text, .commandLine) }
        // An empty variable counts as unset (`QUANTUM_PRIVATE_IP= quantum` in a unit file).
        if let text = environment[spec.environmentVariable], !text.isEmpty { return (text, .environment) }
        if let filePath, let text = file[spec.fileKey] { return (text, .configFile(filePath)) }
        if let text = spec.defaultValue { return (text, .builtInDefault) }
        return nil
    }

    /// The parsed value that wins for `option`; `nil` when nothing sets it and it has no default.
    func value<Value>(_ option: TypedOption<Value>) throws(ConfigurationError) -> (value: Value, origin: ValueOrigin)? {
        guard let (text, origin) = text(for: option.spec) else { return nil }
        guard let value = option.parse(text) else {
            throw .invalidValue(option: option.spec.name, value: text, origin: origin, expected: option.spec.expected)
        }
        return (value, origin)
    }

    /// The parsed value of an option that has a default.
    func required<Value>(_ option: TypedOption<Value>) throws(ConfigurationError) -> (value: Value, origin: ValueOrigin) {
        guard let resolved = try value(option) else {
            preconditionFailure("option \(option.spec.name) has no default")
        }
        return resolved
    }
}

extension Configuration: CustomStringConvertible {
    /// Every setting as `name=value`, for start-up logs; the datastore password is never shown.
    public var description: String {
        let settings: [(String, String?)] = [
            ("device-name", deviceName), ("workers", "\(workers)"), ("private-ip", privateIP?.description),
            ("listen-ip", listenIP), ("listen-port", "\(listenPort)"), ("public-v4", publicV4?.description),
            ("public-v6", publicV6?.description), ("disable-v4", "\(disableV4)"), ("disable-v6", "\(disableV6)"),
            ("data-dir", dataDir), ("datastore-endpoints", datastoreEndpoints.joined(separator: ",")),
            ("datastore-prefix", datastorePrefix), ("datastore-sync-interval", "\(datastoreSyncInterval)"),
            ("datastore-username", datastoreUsername), ("datastore-password", datastorePassword.map { _ in "<redacted>" }),
            ("datastore-tls-ca-cert", datastoreTLSCACert), ("datastore-tls-cert", datastoreTLSCert),
            ("datastore-tls-key", datastoreTLSKey), ("datastore-tls-skip-verify", "\(datastoreTLSSkipVerify)"),
            ("network", "\(network.network)"), ("network-static-range", "\(network.staticRange)"),
            ("network-floating-range", "\(network.floatingRange)"),
            ("network-lease-time", DurationText.format(seconds: network.leaseTimeSeconds)),
            ("mtu", "\(mtu)"), ("log-level", logLevel.rawValue),
            ("stats-address", statsAddress), ("stats-port", "\(statsPort)"), ("stats-route", statsRoute),
            ("plugins", plugins.isEmpty ? nil : plugins.map(\.rawValue).joined(separator: ",")),
            ("datastore-refresh-interval", "\(datastoreRefreshInterval)"),
            ("pid-file", pidFile),
            ("floating-ips", floatingIPs.isEmpty ? nil : floatingIPs.map(\.description).joined(separator: ",")),
            ("datastore-floating-ip-ttl", DurationText.format(seconds: datastoreFloatingIPTTL)),
            ("forward", "\(forward)"), ("gateway", gateway?.description), ("serve-gateway", "\(serveGateway)"),
            ("keepalive", keepalive == 0 ? "0" : DurationText.format(seconds: keepalive)),
            ("network-ca-cert", networkCACert), ("node-cert", nodeCert),
            ("relay", "\(relay)"),
            ("offload", offload ? "on" : "off"),
        ]
        return settings.compactMap { name, value in value.map { "\(name)=\($0)" } }.joined(separator: " ")
    }
}
