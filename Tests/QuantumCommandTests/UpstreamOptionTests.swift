@testable import QuantumCommand
import QuantumCore
import XCTest

/// Upstream Go quantum's option names, booleans and settings keep working here, or are
/// refused in one line that says why.
final class UpstreamOptionTests: XCTestCase {
    /// Upstream's short name of every long option this build has (common/config.go's `short` tags).
    static let upstreamShortNames: [String: String] = [
        "conf-file": "c", "device-name": "i", "workers": "n", "private-ip": "ip", "listen-ip": "lip",
        "listen-port": "p", "public-v4": "4", "disable-v4": "d4", "public-v6": "6", "disable-v6": "d6",
        "data-dir": "d", "plugins": "x", "datastore": "s", "datastore-prefix": "pr",
        "datastore-sync-interval": "si", "datastore-refresh-interval": "ri", "datastore-endpoints": "e",
        "datastore-username": "u", "datastore-password": "pw", "datastore-tls-skip-verify": "tsv",
        "datastore-tls-ca-cert": "tca", "datastore-tls-cert": "tc", "datastore-tls-key": "tk",
        "dtls-skip-verify": "dtsv", "dtls-ca-cert": "dtca", "dtls-cert": "dtc", "dtls-key": "dtk",
        "network": "nw", "network-static-range": "nsr", "network-floating-range": "nfr",
        "network-backend": "nb", "network-lease-time": "nlt",
        "stats-route": "sr", "stats-address": "sa", "stats-port": "sp", "pid-file": "pf",
        "floating-ips": "fips", "datastore-floating-ip-ttl": "fttl", "forward": "f", "gateway": "g",
    ]

    func testEveryUpstreamShortNameParsesToItsLongOption() throws {
        for (long, short) in Self.upstreamShortNames {
            let spec = try XCTUnwrap(OptionTable.spec(named: long), "no option --\(long)")
            XCTAssertEqual(spec.upstreamShortName, short, long)
            let arguments = spec.kind == .flag ? ["-" + short] : ["-" + short, "some-value"]
            let command = try QuantumCommandLine.parse(arguments)
            XCTAssertEqual(command.commandLineValues, [long: spec.kind == .flag ? "true" : "some-value"], "-\(short)")
        }
    }

    func testShortNamesMixWithLongOnesAndReachTheConfiguration() throws {
        let command = try QuantumCommandLine.parse(["-ip", "10.99.0.7", "-p", "4000", "-d4", "-6", "2001:db8::7",
                                                    "-e", "10.0.0.1:2379,10.0.0.2:2379", "--mtu", "1400"])
        let configuration = try Configuration.resolve(commandLine: command.commandLineValues, environment: [:])
        XCTAssertEqual(configuration.privateIP, IPv4Address("10.99.0.7"))
        XCTAssertEqual(configuration.listenPort, 4000)
        XCTAssertTrue(configuration.disableV4)
        XCTAssertEqual(configuration.publicV6, IPv6Address("2001:db8::7"))
        XCTAssertEqual(configuration.datastoreEndpoints, ["10.0.0.1:2379", "10.0.0.2:2379"])
        XCTAssertEqual(configuration.mtu, 1400)
    }

    func testVersionFlags() throws {
        XCTAssertTrue(try QuantumCommandLine.parse(["-v"]).printVersion)
        XCTAssertFalse(try QuantumCommandLine.parse([]).printVersion)
        XCTAssertEqual(QuantumCommandLine.configuration.version, "quantum \(QuantumVersion.string)")
        // --version is ArgumentParser's own: it is asked for, not parsed into the command.
        XCTAssertThrowsError(try QuantumCommandLine.parse(["--version"])) { error in
            XCTAssertEqual(QuantumCommandLine.exitCode(for: error).rawValue, 0)
            XCTAssertEqual(QuantumCommandLine.message(for: error), "quantum \(QuantumVersion.string)")
        }
        XCTAssertThrowsError(try QuantumCommandLine.parse(["-h"])) { error in
            XCTAssertEqual(QuantumCommandLine.exitCode(for: error).rawValue, 0)
        }
    }

    func testBooleansAcceptWhatGoParseBoolAccepts() throws {
        for (text, value) in [("1", true), ("t", true), ("T", true), ("TRUE", true), ("true", true), ("True", true),
                              ("0", false), ("f", false), ("F", false), ("FALSE", false), ("false", false),
                              ("False", false)] {
            XCTAssertEqual(try resolve(env: ["QUANTUM_DISABLE_V4": text]).disableV4, value, "env \(text)")
            let yaml = ["/q.yml": "datastore-tls-skip-verify: \(text)\n"]
            XCTAssertEqual(try resolve(cli: ["conf-file": "/q.yml"], files: yaml).datastoreTLSSkipVerify, value, "yaml \(text)")
        }
        let json = ["/q.json": #"{"disable-v6": true, "datastore-tls-skip-verify": 0}"#]
        let configuration = try resolve(cli: ["conf-file": "/q.json"], files: json)
        XCTAssertTrue(configuration.disableV6)
        XCTAssertFalse(configuration.datastoreTLSSkipVerify)
        for text in ["yes", "on", "2", "tRUE", "", " true"] where !text.isEmpty {
            assertRejected(env: ["QUANTUM_DISABLE_V6": text], mentions: ["'\(text)'", "--disable-v6", "in the environment",
                                                                         "true or false (or 1, t, T"])
        }
    }

    func testPluginsAreNamedAndUnknownOnesRefusedByName() throws {
        XCTAssertEqual(try resolve().plugins, [])
        XCTAssertFalse(try resolve().compression)
        let both = try resolve(cli: ["plugins": "compression,encryption"])
        XCTAssertEqual(both.plugins, [.compression, .encryption])
        XCTAssertTrue(both.compression)
        XCTAssertEqual(try resolve(cli: ["conf-file": "/q.yml"], files: ["/q.yml": "plugins: [compression]\n"]).plugins,
                       [.compression])
        XCTAssertEqual(try resolve(env: ["QUANTUM_PLUGINS": "encryption"]).plugins, [.encryption])
        assertRejected(env: ["QUANTUM_PLUGINS": "compression,zstd"],
                       mentions: ["'zstd'", "--plugins", "in the environment", "compression or encryption"])
        assertRejected(cli: ["plugins": "compression,,"], mentions: ["--plugins", "'compression,,'"])
    }

    func testRefreshIntervalMustBeShorterThanTheLease() throws {
        XCTAssertEqual(try resolve().datastoreRefreshInterval, .seconds(120))
        XCTAssertEqual(try resolve(cli: ["datastore-refresh-interval": "30s"]).datastoreRefreshInterval, .seconds(30))
        XCTAssertEqual(try resolve(cli: ["network-lease-time": "60s"]).datastoreRefreshInterval,
                       .seconds(20), "the default gives way to a third of a shorter lease")
        assertRejected(cli: ["datastore-refresh-interval": "10m", "network-lease-time": "10m"], mentions: [
            "--datastore-refresh-interval", "(on the command line)", "--network-lease-time 10m", "shorter",
        ])
        assertRejected(env: ["QUANTUM_DATASTORE_REFRESH_INTERVAL": "500ms"],
                       mentions: ["'500ms'", "--datastore-refresh-interval", "at least 1s"])
    }

    func testRenewalFollowsAShorterSyncIntervalOrLeaseInEtcd() throws {
        let configuration = try resolve(cli: ["datastore-refresh-interval": "2m", "datastore-sync-interval": "5m"])
        let usual = Daemon.refreshInterval(configuration, leaseTimeSeconds: 48 * 3600)
        XCTAssertEqual(usual.interval, .seconds(120))
        XCTAssertNil(usual.warning)
        let syncedMoreOften = try resolve(cli: ["datastore-refresh-interval": "2m", "datastore-sync-interval": "10s"])
        XCTAssertEqual(Daemon.refreshInterval(syncedMoreOften, leaseTimeSeconds: 48 * 3600).interval, .seconds(10),
                       "a wiped prefix is re-registered within one sync interval")
        let short = Daemon.refreshInterval(configuration, leaseTimeSeconds: 90)
        XCTAssertEqual(short.interval, .seconds(30))
        XCTAssertTrue(short.warning?.contains("--datastore-refresh-interval") == true)
    }

    func testUpstreamOnlyBackendsAndDatastoresAreRefused() throws {
        XCTAssertNoThrow(try resolve(cli: ["datastore": "etcd", "network-backend": "udp"]))
        XCTAssertNoThrow(try resolve(env: ["QUANTUM_DATASTORE": "etcdv3"]))
        assertRejected(cli: ["datastore": "etcdv2"], mentions: ["'etcdv2'", "--datastore", "not supported", "v3 API"])
        assertRejected(env: ["QUANTUM_NETWORK_BACKEND": "dtls"],
                       mentions: ["'dtls'", "--network-backend", "Noise-based transport replaces it"])
        for name in ["dtls-ca-cert", "dtls-cert", "dtls-key"] {
            assertRejected(cli: [name: "/etc/quantum/dtls.pem"], mentions: ["--\(name)", "DTLS is not a backend here"])
        }
        assertRejected(cli: ["dtls-skip-verify": "true"], mentions: ["--dtls-skip-verify", "DTLS is not a backend here"])
        assertRejected(cli: ["conf-file": "/q.yml"], files: ["/q.yml": "dtls-cert: /x.pem\n"],
                       mentions: ["--dtls-cert", "in config file /q.yml"])
    }
}
