import Logging
import QuantumCommand
import QuantumCore
import XCTest

final class ConfigurationPrecedenceTests: XCTestCase {
    func testDefaults() throws {
        let configuration = try resolve(cores: 6)
        XCTAssertEqual(configuration.deviceName, "quantum%d")
        XCTAssertEqual(configuration.workers, 3)
        XCTAssertNil(configuration.privateIP)
        XCTAssertNil(configuration.listenIP)
        XCTAssertEqual(configuration.listenPort, 1099)
        XCTAssertNil(configuration.publicV4)
        XCTAssertNil(configuration.publicV6)
        XCTAssertFalse(configuration.disableV4)
        XCTAssertFalse(configuration.disableV6)
        XCTAssertEqual(configuration.dataDir, "/var/lib/quantum")
        XCTAssertEqual(configuration.datastoreEndpoints, ["127.0.0.1:2379"])
        XCTAssertEqual(configuration.datastorePrefix, "/quantum")
        XCTAssertEqual(configuration.datastoreSyncInterval, .seconds(60))
        XCTAssertNil(configuration.datastoreUsername)
        XCTAssertNil(configuration.datastorePassword)
        XCTAssertNil(configuration.datastoreTLSCACert)
        XCTAssertNil(configuration.datastoreTLSCert)
        XCTAssertNil(configuration.datastoreTLSKey)
        XCTAssertFalse(configuration.datastoreTLSSkipVerify)
        XCTAssertEqual(configuration.network, try NetworkConfig(
            network: IPv4Prefix(parsing: "10.99.0.0/16"), staticRange: IPv4Prefix(parsing: "10.99.0.0/23"),
            floatingRange: IPv4Prefix(parsing: "10.99.2.0/23"), leaseTimeSeconds: 48 * 3600))
        XCTAssertEqual(configuration.mtu, 1420)
        XCTAssertEqual(configuration.logLevel, .info)
    }

    func testEmptyEnvironmentVariableCountsAsUnset() throws {
        let files = ["/q.yml": "listen-port: 2000\nprivate-ip: 10.99.0.9\n"]
        let configuration = try resolve(env: ["QUANTUM_CONF_FILE": "/q.yml", "QUANTUM_LISTEN_PORT": "",
                                              "QUANTUM_PRIVATE_IP": ""], files: files)
        XCTAssertEqual(configuration.listenPort, 2000, "the empty variable must not hide the file's value")
        XCTAssertEqual(configuration.privateIP, IPv4Address("10.99.0.9"))
        XCTAssertEqual(try resolve(env: ["QUANTUM_MTU": ""]).mtu, 1420, "an empty variable leaves the default")
    }

    func testMistypedEnvironmentVariablesAreReportedWithTheClosestSetting() {
        let unknown = Configuration.unknownEnvironmentVariables(in: [
            "QUANTUM_LISTEN_PROT": "1", "QUANTUM_LISTEN_PORT": "1", "QUANTUM_FROBNICATE_EVERYTHING": "x",
            "PATH": "/bin", "QUANTUMX": "y",
        ])
        XCTAssertEqual(unknown.map(\.name), ["QUANTUM_FROBNICATE_EVERYTHING", "QUANTUM_LISTEN_PROT"])
        XCTAssertEqual(unknown.map(\.suggestion), [nil, "QUANTUM_LISTEN_PORT"])
        XCTAssertTrue(Configuration.unknownEnvironmentVariables(in: ["QUANTUM_MTU": "1400"]).isEmpty)
    }

    func testWorkersZeroIsOnePerTwoCoresCappedAt64() throws {
        XCTAssertEqual(try resolve(cores: 1).workers, 1)
        XCTAssertEqual(try resolve(cores: 2).workers, 1)
        XCTAssertEqual(try resolve(cores: 5).workers, 2)
        XCTAssertEqual(try resolve(cores: 200).workers, 64)
        XCTAssertEqual(try resolve(cli: ["workers": "3"], cores: 200).workers, 3)
    }

    func testCommandLineBeatsEnvironmentBeatsFileBeatsDefault() throws {
        let file = ["/etc/q.yml": "listen-port: 3000\nlog-level: warning\ndatastore-prefix: /file\nnetwork-lease-time: 3h\n"]
        let env = ["QUANTUM_CONF_FILE": "/etc/q.yml", "QUANTUM_LISTEN_PORT": "2000", "QUANTUM_LOG_LEVEL": "debug"]
        let cli = ["listen-port": "1000"]

        let all = try resolve(cli: cli, env: env, files: file)
        XCTAssertEqual(all.listenPort, 1000)
        XCTAssertEqual(all.logLevel, .debug)
        XCTAssertEqual(all.datastorePrefix, "/file")
        XCTAssertEqual(all.network.leaseTimeSeconds, 3 * 3600)
        XCTAssertEqual(all.mtu, 1420)

        let noCommandLine = try resolve(env: env, files: file)
        XCTAssertEqual(noCommandLine.listenPort, 2000)

        let fileOnly = try resolve(env: ["QUANTUM_CONF_FILE": "/etc/q.yml"], files: file)
        XCTAssertEqual(fileOnly.listenPort, 3000)
        XCTAssertEqual(fileOnly.logLevel, .warning)
    }

    func testFlagsFollowTheSamePrecedence() throws {
        let file = ["/q.json": #"{"disable-v6": true, "datastore-tls-skip-verify": false}"#]
        let fromFile = try resolve(cli: ["conf-file": "/q.json"], files: file)
        XCTAssertTrue(fromFile.disableV6)
        XCTAssertFalse(fromFile.datastoreTLSSkipVerify)

        let envOverridesFile = try resolve(
            cli: ["conf-file": "/q.json"],
            env: ["QUANTUM_DISABLE_V6": "false", "QUANTUM_DATASTORE_TLS_SKIP_VERIFY": "true"], files: file)
        XCTAssertFalse(envOverridesFile.disableV6)
        XCTAssertTrue(envOverridesFile.datastoreTLSSkipVerify)

        let cliOverridesEnv = try resolve(
            cli: ["conf-file": "/q.json", "disable-v6": "true"], env: ["QUANTUM_DISABLE_V6": "false"], files: file)
        XCTAssertTrue(cliOverridesEnv.disableV6)
    }

    func testConfFileOnCommandLineBeatsEnvironment() throws {
        let files = ["/a.yaml": "mtu: 1300\n", "/b.yaml": "mtu: 1200\n"]
        let configuration = try resolve(cli: ["conf-file": "/a.yaml"], env: ["QUANTUM_CONF_FILE": "/b.yaml"], files: files)
        XCTAssertEqual(configuration.mtu, 1300)
    }

    func testEveryOptionIsReadFromItsEnvironmentVariable() throws {
        let env = [
            "QUANTUM_DEVICE_NAME": "vpn7", "QUANTUM_WORKERS": "2", "QUANTUM_PRIVATE_IP": "172.16.1.5",
            "QUANTUM_LISTEN_IP": "2001:db8::5", "QUANTUM_LISTEN_PORT": "5000", "QUANTUM_PUBLIC_V4": "192.0.2.7",
            "QUANTUM_PUBLIC_V6": "2001:db8::7", "QUANTUM_DISABLE_V4": "false", "QUANTUM_DISABLE_V6": "false",
            "QUANTUM_DATA_DIR": "/tmp/q", "QUANTUM_DATASTORE_ENDPOINTS": "https://etcd.example:2379, 10.0.0.2:2379",
            "QUANTUM_DATASTORE_PREFIX": "/net/a", "QUANTUM_DATASTORE_SYNC_INTERVAL": "5m",
            "QUANTUM_DATASTORE_USERNAME": "root", "QUANTUM_DATASTORE_PASSWORD": "secret",
            "QUANTUM_DATASTORE_TLS_CA_CERT": "/ca.pem", "QUANTUM_DATASTORE_TLS_CERT": "/c.pem",
            "QUANTUM_DATASTORE_TLS_KEY": "/k.pem", "QUANTUM_DATASTORE_TLS_SKIP_VERIFY": "true",
            "QUANTUM_NETWORK": "172.16.0.0/12", "QUANTUM_NETWORK_STATIC_RANGE": "172.16.0.0/16",
            "QUANTUM_NETWORK_FLOATING_RANGE": "172.17.0.0/16", "QUANTUM_NETWORK_LEASE_TIME": "10m",
            "QUANTUM_MTU": "9000", "QUANTUM_LOG_LEVEL": "trace",
        ]
        let configuration = try resolve(env: env)
        XCTAssertEqual(configuration.deviceName, "vpn7")
        XCTAssertEqual(configuration.workers, 2)
        XCTAssertEqual(configuration.privateIP, IPv4Address("172.16.1.5"))
        XCTAssertEqual(configuration.listenIP, "2001:db8::5")
        XCTAssertEqual(configuration.listenPort, 5000)
        XCTAssertEqual(configuration.publicV4, IPv4Address("192.0.2.7"))
        XCTAssertEqual(configuration.publicV6, IPv6Address("2001:db8::7"))
        XCTAssertEqual(configuration.dataDir, "/tmp/q")
        XCTAssertEqual(configuration.datastoreEndpoints, ["https://etcd.example:2379", "10.0.0.2:2379"])
        XCTAssertEqual(configuration.datastorePrefix, "/net/a")
        XCTAssertEqual(configuration.datastoreSyncInterval, .seconds(300))
        XCTAssertEqual(configuration.datastoreUsername, "root")
        XCTAssertEqual(configuration.datastorePassword, "secret")
        XCTAssertEqual(configuration.datastoreTLSCACert, "/ca.pem")
        XCTAssertEqual(configuration.datastoreTLSCert, "/c.pem")
        XCTAssertEqual(configuration.datastoreTLSKey, "/k.pem")
        XCTAssertTrue(configuration.datastoreTLSSkipVerify)
        XCTAssertEqual(configuration.network.network, try IPv4Prefix(parsing: "172.16.0.0/12"))
        XCTAssertEqual(configuration.network.staticRange, try IPv4Prefix(parsing: "172.16.0.0/16"))
        XCTAssertEqual(configuration.network.floatingRange, try IPv4Prefix(parsing: "172.17.0.0/16"))
        XCTAssertEqual(configuration.network.leaseTimeSeconds, 600)
        XCTAssertEqual(configuration.mtu, 9000)
        XCTAssertEqual(configuration.logLevel, .trace)
    }

    func testPrivateIPInsideTheNetwork() throws {
        XCTAssertEqual(try resolve(cli: ["private-ip": "10.99.0.20"]).privateIP, IPv4Address("10.99.0.20"))
    }
}

final class ConfigurationDescriptionTests: XCTestCase {
    func testDescriptionHidesThePassword() throws {
        let text = try resolve(env: ["QUANTUM_DATASTORE_PASSWORD": "hunter2", "QUANTUM_LISTEN_PORT": "1234"]).description
        XCTAssertFalse(text.contains("hunter2"))
        XCTAssertTrue(text.contains("datastore-password=<redacted>"))
        XCTAssertTrue(text.contains("listen-port=1234"))
        XCTAssertTrue(text.contains("network-lease-time=48h"))
    }
}
