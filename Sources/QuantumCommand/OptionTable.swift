import Logging
import QuantumCore

/// The one table of quantum's options: names, environment variables, config-file keys,
/// defaults, help and parsers. The command line, `--help`, the environment and config
/// files are all driven from here.
public enum OptionTable {
    static let confFile = TypedOption<String>(spec: OptionSpec(
        "conf-file", default: nil, valueName: "path",
        summary: "Config file of option values keyed by long option name: YAML (.yml, .yaml) or JSON (.json)",
        expected: "a path ending in .yml, .yaml or .json", allowedInFile: false, short: "c"),
        parse: ValueParser.text)

    static let deviceName = TypedOption<String>(spec: OptionSpec(
        "device-name", default: "quantum%d", valueName: "name",
        summary: "TUN device name, at most 15 bytes; %d lets the kernel pick the number",
        expected: "an interface name of 1-15 bytes without '/', ':' or spaces, with at most one %d", short: "i"),
        parse: ValueParser.deviceName)

    /// Default 0 = one worker per two cores: measured on 2 cores with offloads (release build,
    /// iperf3 through two namespaces), one worker moved 3.8 Gbit/s with a 0.06 ms median RTT
    /// and two 3.3 Gbit/s with 0.24 ms — with 64 KB per system call the worker no longer
    /// needs a core of its own, and the kernel's network stack and the applications do.
    static let workers = TypedOption<Int>(spec: OptionSpec(
        "workers", default: "0", shown: "0 = one per two CPU cores", valueName: "count",
        summary: "Packet worker threads, at most 64",
        expected: "a number of threads 0-64 (0 = one per two CPU cores)", short: "n"),
        parse: { ValueParser.integer($0, in: 0...64) })

    static let privateIP = TypedOption<IPv4Address>(spec: OptionSpec(
        "private-ip", default: nil, shown: "leased from the network's dynamic range", valueName: "address",
        summary: "Private IPv4 address to claim inside --network",
        expected: "an IPv4 address such as 10.99.0.10", short: "ip"),
        parse: ValueParser.ipv4)

    static let listenIP = TypedOption<String>(spec: OptionSpec(
        "listen-ip", default: nil, shown: "all addresses", valueName: "address",
        summary: "IPv4 or IPv6 address to bind the UDP socket to",
        expected: "an IPv4 or IPv6 address such as 192.0.2.1 or 2001:db8::1", short: "lip"),
        parse: ValueParser.bindAddress)

    static let listenPort = TypedOption<UInt16>(spec: OptionSpec(
        "listen-port", default: "1099", valueName: "port",
        summary: "UDP port to listen on",
        expected: "a port number 1-65535", short: "p"),
        parse: ValueParser.port)

    static let publicV4 = TypedOption<IPv4Address>(spec: OptionSpec(
        "public-v4", default: nil, valueName: "address",
        summary: "Public IPv4 address peers reach this node on",
        expected: "an IPv4 address that is not loopback, link-local, multicast, broadcast or unspecified", short: "4"),
        parse: ValueParser.publicIPv4)

    static let publicV6 = TypedOption<IPv6Address>(spec: OptionSpec(
        "public-v6", default: nil, valueName: "address",
        summary: "Public IPv6 address peers reach this node on",
        expected: "an IPv6 address that is not loopback, link-local, multicast or unspecified", short: "6"),
        parse: ValueParser.publicIPv6)

    static let disableV4 = TypedOption<Bool>(spec: OptionSpec(
        "disable-v4", kind: .flag, default: "false",
        summary: "Do not use IPv4 to reach peers",
        expected: ValueParser.booleanExpected, short: "d4"),
        parse: ValueParser.boolean)

    static let disableV6 = TypedOption<Bool>(spec: OptionSpec(
        "disable-v6", kind: .flag, default: "false",
        summary: "Do not use IPv6 to reach peers",
        expected: ValueParser.booleanExpected, short: "d6"),
        parse: ValueParser.boolean)

    static let dataDir = TypedOption<String>(spec: OptionSpec(
        "data-dir", default: "/var/lib/quantum", valueName: "path",
        summary: "Directory for machine-id, private.key and private-ip, kept at mode 0700",
        expected: "a directory path", short: "d"),
        parse: ValueParser.text)

    static let datastoreEndpoints = TypedOption<[String]>(spec: OptionSpec(
        "datastore-endpoints", default: "127.0.0.1:2379", valueName: "endpoints",
        summary: "Comma-separated etcd endpoints, each host:port or http(s)://host:port",
        expected: "a comma-separated list of host:port or http(s)://host[:port] endpoints", acceptsList: true, short: "e"),
        parse: ValueParser.endpoints)

    static let datastorePrefix = TypedOption<String>(spec: OptionSpec(
        "datastore-prefix", default: "/quantum", valueName: "prefix",
        summary: "etcd key prefix of this network",
        expected: "a key prefix that starts with '/' and has no trailing '/', e.g. /quantum", short: "pr"),
        parse: ValueParser.keyPrefix)

    static let datastoreSyncInterval = TypedOption<Int64>(spec: OptionSpec(
        "datastore-sync-interval", default: "60s", valueName: "duration",
        summary: "Time between full resyncs of the local datastore cache",
        expected: "a duration of at least 1s such as 30s, 5m or 1h", short: "si"),
        parse: { ValueParser.milliseconds($0, minimum: 1000) })

    static let datastoreUsername = TypedOption<String>(spec: OptionSpec(
        "datastore-username", default: nil, valueName: "user",
        summary: "etcd user name",
        expected: "a non-empty user name", short: "u"),
        parse: ValueParser.text)

    static let datastorePassword = TypedOption<String>(spec: OptionSpec(
        "datastore-password", default: nil, valueName: "password",
        summary: "etcd password; prefer the environment or a config file to the command line",
        expected: "a non-empty password", short: "pw"),
        parse: ValueParser.text)

    static let datastoreTLSCACert = TypedOption<String>(spec: OptionSpec(
        "datastore-tls-ca-cert", default: nil, valueName: "path",
        summary: "PEM file of the CA that signed the etcd server certificate",
        expected: "a file path", short: "tca"),
        parse: ValueParser.text)

    static let datastoreTLSCert = TypedOption<String>(spec: OptionSpec(
        "datastore-tls-cert", default: nil, valueName: "path",
        summary: "PEM client certificate for etcd; needs --datastore-tls-key",
        expected: "a file path", short: "tc"),
        parse: ValueParser.text)

    static let datastoreTLSKey = TypedOption<String>(spec: OptionSpec(
        "datastore-tls-key", default: nil, valueName: "path",
        summary: "PEM private key of --datastore-tls-cert",
        expected: "a file path", short: "tk"),
        parse: ValueParser.text)

    static let datastoreTLSSkipVerify = TypedOption<Bool>(spec: OptionSpec(
        "datastore-tls-skip-verify", kind: .flag, default: "false",
        summary: "Do not verify the etcd server certificate (insecure)",
        expected: ValueParser.booleanExpected, short: "tsv"),
        parse: ValueParser.boolean)

    static let network = TypedOption<IPv4Prefix>(spec: OptionSpec(
        "network", default: "10.99.0.0/16", valueName: "prefix",
        summary: "The private network",
        expected: "an IPv4 prefix with no host bits set, e.g. 10.99.0.0/16", short: "nw"),
        parse: ValueParser.prefix)

    static let networkStaticRange = TypedOption<IPv4Prefix>(spec: OptionSpec(
        "network-static-range", default: "10.99.0.0/23", valueName: "prefix",
        summary: "Part of --network reserved for --private-ip claims",
        expected: "an IPv4 prefix with no host bits set, e.g. 10.99.0.0/23", short: "nsr"),
        parse: ValueParser.prefix)

    static let networkFloatingRange = TypedOption<IPv4Prefix>(spec: OptionSpec(
        "network-floating-range", default: "10.99.2.0/23", valueName: "prefix",
        summary: "Part of --network reserved for floating IPs",
        expected: "an IPv4 prefix with no host bits set, e.g. 10.99.2.0/23", short: "nfr"),
        parse: ValueParser.prefix)

    static let networkLeaseTime = TypedOption<Int64>(spec: OptionSpec(
        "network-lease-time", default: "48h", valueName: "duration",
        summary: "How long a node keeps its address without renewing the lease",
        expected: "a duration in whole seconds of at least 10s, such as 10m or 48h", short: "nlt"),
        parse: { ValueParser.seconds($0, minimum: 10) })

    static let mtu = TypedOption<Int>(spec: OptionSpec(
        "mtu", default: "1420", valueName: "bytes",
        summary: "TUN device MTU, 576-9000; 1420 = 1500 Ethernet - 40 IPv6 - 8 UDP - 16 quantum header - 16 AES-GCM tag",
        expected: "an MTU in bytes 576-9000"),
        parse: { ValueParser.integer($0, in: 576...9000) })

    static let logLevel = TypedOption<Logger.Level>(spec: OptionSpec(
        "log-level", default: "info", valueName: "level",
        summary: "Log level: trace, debug, info, notice, warning, error or critical",
        expected: "one of trace, debug, info, notice, warning, error, critical"),
        parse: ValueParser.logLevel)

    static let statsAddress = TypedOption<String>(spec: OptionSpec(
        "stats-address", default: "127.0.0.1", valueName: "address",
        summary: "Address of the HTTP stats endpoint (/stats, /metrics, /peers); it has no authentication, so keep it local",
        expected: "an IPv4 or IPv6 address such as 127.0.0.1 or ::1", short: "sa"),
        parse: ValueParser.bindAddress)

    static let statsPort = TypedOption<UInt16>(spec: OptionSpec(
        "stats-port", default: "1099", valueName: "port",
        summary: "TCP port of the HTTP stats endpoint; 0 turns the endpoint off",
        expected: "a port number 0-65535 (0 = no stats endpoint)", short: "sp"),
        parse: { ValueParser.integer($0, in: 0...65535).map { UInt16($0) } })

    static let statsRoute = TypedOption<String>(spec: OptionSpec(
        "stats-route", default: "/stats", valueName: "path",
        summary: "Path of the upstream-style JSON statistics on the stats endpoint",
        expected: "a path starting with '/', without spaces, '?' or '#', other than /metrics, /peers and /node", short: "sr"),
        parse: ValueParser.statsRoute)

    static let plugins = TypedOption<[String]>(spec: OptionSpec(
        "plugins", default: nil, shown: "none", valueName: "plugins",
        summary: "Comma-separated data-path plugins: compression (LZ4, used with peers that list it too); "
            + "encryption is always on and may be listed",
        expected: "a comma-separated list of compression and encryption", acceptsList: true, short: "x"),
        parse: ValueParser.list)

    static let datastoreRefreshInterval = TypedOption<Int64>(spec: OptionSpec(
        "datastore-refresh-interval", default: "120s", shown: "120s, or a third of a shorter lease time",
        valueName: "duration",
        summary: "How often this node's address lease, and with it its mapping, is renewed in etcd "
            + "(at least every --datastore-sync-interval); must be shorter than the lease time",
        expected: "a duration of at least 1s such as 30s, 2m or 1h", short: "ri"),
        parse: { ValueParser.milliseconds($0, minimum: 1000) })

    static let datastore = TypedOption<String>(spec: OptionSpec(
        "datastore", default: "etcdv3", valueName: "kind",
        summary: "The datastore: etcd's v3 API (etcd and etcdv3 mean the same); upstream's etcdv2 is not supported",
        expected: "etcd or etcdv3 (etcd's v2 API, etcdv2, is not supported: run etcd v3 and use its v3 API)",
        short: "s"),
        parse: { ["etcd", "etcdv3"].contains($0) ? $0 : nil })

    static let networkBackend = TypedOption<String>(spec: OptionSpec(
        "network-backend", default: "udp", valueName: "backend",
        summary: "The network backend: udp, carrying the Noise-encrypted transport; upstream's dtls is not a backend here",
        expected: "udp (dtls is not a backend here: the Noise-based transport replaces it)", short: "nb"),
        parse: { $0 == "udp" ? $0 : nil })

    static let dtlsSkipVerify = refusedDTLSOption("dtls-skip-verify", kind: .flag, short: "dtsv")
    static let dtlsCACert = refusedDTLSOption("dtls-ca-cert", short: "dtca")
    static let dtlsCert = refusedDTLSOption("dtls-cert", short: "dtc")
    static let dtlsKey = refusedDTLSOption("dtls-key", short: "dtk")

    /// One of upstream's `--dtls-*` options: known by name, so that any value for it is
    /// refused with the reason rather than as a mistyped option.
    private static func refusedDTLSOption(_ name: String, kind: OptionSpec.Kind = .value,
                                          short: String) -> TypedOption<String> {
        TypedOption(spec: OptionSpec(
            name, kind: kind, default: nil, shown: "not supported", valueName: kind == .flag ? "value" : "path",
            summary: "Upstream's DTLS backend option; refused: DTLS is not a backend here",
            expected: "no value: DTLS is not a backend here (the Noise-based transport replaces it, "
                + "with keys from --data-dir); remove the option", short: short),
            parse: { _ in nil })
    }

    static let pidFile = TypedOption<String>(spec: OptionSpec(
        "pid-file", default: "/var/run/quantum.pid", valueName: "path",
        summary: "File the running daemon's PID is written to (atomically, once it is up; removed on stop)",
        expected: "a file path", short: "pf"),
        parse: ValueParser.text)

    static let floatingIPs = TypedOption<[IPv4Address]>(spec: OptionSpec(
        "floating-ips", default: nil, shown: "none", valueName: "addresses",
        summary: "Comma-separated floating IPs (inside --network-floating-range) this node competes to serve",
        expected: "a comma-separated list of distinct IPv4 addresses such as 10.99.2.1,10.99.2.2", acceptsList: true, short: "fips"),
        parse: ValueParser.ipv4List)

    static let datastoreFloatingIPTTL = TypedOption<Int64>(spec: OptionSpec(
        "datastore-floating-ip-ttl", default: "10s", valueName: "duration",
        summary: "Lease time of a floating IP: a dead holder is replaced within it",
        expected: "a duration in whole seconds of at least 2s, such as 10s", short: "fttl"),
        parse: { ValueParser.seconds($0, minimum: 2) })

    static let forward = TypedOption<Bool>(spec: OptionSpec(
        "forward", kind: .flag, default: "false",
        summary: "Send all traffic without a more specific route through the --gateway node",
        expected: "true or false", short: "f"),
        parse: ValueParser.boolean)

    static let gateway = TypedOption<IPv4Address>(spec: OptionSpec(
        "gateway", default: nil, valueName: "address",
        summary: "Private IP of the node that forwards traffic for --forward; it must run --serve-gateway",
        expected: "an IPv4 address such as 10.99.0.1", short: "g"),
        parse: ValueParser.ipv4)

    static let serveGateway = TypedOption<Bool>(spec: OptionSpec(
        "serve-gateway", kind: .flag, default: "false",
        summary: "Forward peers' traffic for destinations outside the network, masqueraded behind this host",
        expected: "true or false"),
        parse: ValueParser.boolean)

    static let keepalive = TypedOption<Int64>(spec: OptionSpec(
        "keepalive", default: "25s", valueName: "duration",
        summary: "Send a keepalive on an established link after this long without sending, to hold NAT bindings open (0 = off)",
        expected: "a duration in whole seconds such as 25s, or 0 to turn keepalives off"),
        parse: ValueParser.secondsOrOff)

    static let networkCACert = TypedOption<String>(spec: OptionSpec(
        "network-ca-cert", default: nil, valueName: "path",
        summary: "Certificate of the network CA (quantum ca init): only peers it certifies are accepted; needs --node-cert",
        expected: "a file path"),
        parse: ValueParser.text)

    static let nodeCert = TypedOption<String>(spec: OptionSpec(
        "node-cert", default: nil, valueName: "path",
        summary: "This node's certificate from the network CA (quantum ca sign); its address is claimed; needs --network-ca-cert",
        expected: "a file path"),
        parse: ValueParser.text)
    static let relay = TypedOption<Bool>(spec: OptionSpec(
        "relay", kind: .flag, default: "false",
        summary: "Offer this node as relay: forward sealed traffic between peers that cannot reach each other directly",
        expected: "true or false"),
        parse: ValueParser.boolean)

    static let offload = TypedOption<Bool>(spec: OptionSpec(
        "offload", default: "on", valueName: "on|off",
        summary: "TUN and UDP offloads: 64 KB TCP super-packets from the kernel segmented in the tunnel, "
            + "received TCP segments coalesced, UDP segmentation and receive coalescing (off: one packet per "
            + "TUN read and write)",
        expected: "on or off"),
        parse: { text in text == "on" ? true : text == "off" ? false : nil })

    /// Every option, in `--help` order.
    public static let all: [OptionSpec] = [
        confFile.spec, deviceName.spec, workers.spec, privateIP.spec, listenIP.spec, listenPort.spec,
        publicV4.spec, publicV6.spec, disableV4.spec, disableV6.spec, dataDir.spec,
        datastoreEndpoints.spec, datastorePrefix.spec, datastoreSyncInterval.spec,
        datastoreUsername.spec, datastorePassword.spec, datastoreTLSCACert.spec, datastoreTLSCert.spec,
        datastoreTLSKey.spec, datastoreTLSSkipVerify.spec, network.spec, networkStaticRange.spec,
        networkFloatingRange.spec, networkLeaseTime.spec, mtu.spec, logLevel.spec,
        statsAddress.spec, statsPort.spec, statsRoute.spec,
        plugins.spec, datastoreRefreshInterval.spec, datastore.spec, networkBackend.spec,
        dtlsSkipVerify.spec, dtlsCACert.spec, dtlsCert.spec, dtlsKey.spec,
        pidFile.spec,
        floatingIPs.spec, datastoreFloatingIPTTL.spec, forward.spec, gateway.spec, serveGateway.spec,
        keepalive.spec,
        networkCACert.spec, nodeCert.spec,
        relay.spec,
        offload.spec,
    ]

    /// The option with this long name (no dashes), if any.
    public static func spec(named name: String) -> OptionSpec? {
        all.first { $0.name == name }
    }
}
