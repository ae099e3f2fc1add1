import QuantumCommand
import XCTest

/// Every kind of bad value stops resolution with one line naming the option, the value,
/// where it came from and what was expected.
final class ConfigurationValueTests: XCTestCase {
    func testBadPort() {
        for value in ["abc", "0", "65536", "-1", " 80", "+80"] {
            assertRejected(cli: ["listen-port": value], mentions: [
                "'\(value)'", "--listen-port", "QUANTUM_LISTEN_PORT / listen-port", "on the command line",
                "expected a port number 1-65535",
            ])
        }
    }

    func testSourceIsNamed() {
        assertRejected(env: ["QUANTUM_LISTEN_PORT": "abc"], mentions: ["'abc'", "--listen-port", "in the environment"])
        assertRejected(cli: ["conf-file": "/etc/quantum.yml"], files: ["/etc/quantum.yml": "listen-port: abc\n"],
                       mentions: ["'abc'", "--listen-port", "in config file /etc/quantum.yml"])
    }

    func testBadAddresses() {
        assertRejected(cli: ["private-ip": "10.99.0.300"], mentions: ["'10.99.0.300'", "--private-ip", "IPv4 address"])
        assertRejected(cli: ["listen-ip": "nowhere"], mentions: ["'nowhere'", "--listen-ip", "IPv4 or IPv6"])
        for value in ["127.0.0.1", "169.254.1.1", "0.0.0.0", "224.0.0.1", "2001:db8::1"] {
            assertRejected(cli: ["public-v4": value], mentions: ["'\(value)'", "--public-v4", "QUANTUM_PUBLIC_V4"])
        }
        for value in ["::1", "fe80::1", "::", "ff02::1", "192.0.2.1"] {
            assertRejected(env: ["QUANTUM_PUBLIC_V6": value], mentions: ["'\(value)'", "--public-v6", "in the environment"])
        }
    }

    func testBadPrefixes() {
        assertRejected(cli: ["network": "10.99.0.1/16"], mentions: ["'10.99.0.1/16'", "--network", "no host bits"])
        assertRejected(cli: ["network-static-range": "10.99.0.0/33"], mentions: ["'10.99.0.0/33'", "--network-static-range"])
        assertRejected(cli: ["network-floating-range": "ten"], mentions: ["'ten'", "--network-floating-range"])
    }

    func testStaticRangeOutsideNetworkNamesTheOptions() {
        assertRejected(cli: ["network-static-range": "10.98.0.0/23"], mentions: [
            "--network 10.99.0.0/16", "--network-static-range 10.98.0.0/23 (on the command line)",
            "not inside network",
        ])
        assertRejected(env: ["QUANTUM_NETWORK_FLOATING_RANGE": "10.99.1.0/24"], mentions: [
            "--network-floating-range 10.99.1.0/24 (in the environment)", "overlaps",
        ])
    }

    func testBadDurations() {
        for value in ["10x", "", "0s", "10", "500ms"] {
            assertRejected(cli: ["datastore-sync-interval": value], mentions: ["'\(value)'", "--datastore-sync-interval"])
        }
        for value in ["5s", "1500ms", "forever"] {
            assertRejected(cli: ["network-lease-time": value], mentions: ["'\(value)'", "--network-lease-time", "at least 10s"])
        }
    }

    func testBadWorkers() {
        for value in ["65", "-1", "many", "1.5"] {
            assertRejected(cli: ["workers": value], mentions: ["'\(value)'", "--workers", "0-64"])
        }
    }

    func testBadDeviceNames() {
        for value in ["quantum-device-01", "a b", "a/b", "", "..", "q%s", "q%d%d", "eth0:1"] {
            assertRejected(cli: ["device-name": value], mentions: ["'\(value)'", "--device-name", "1-15 bytes"])
        }
        XCTAssertEqual(try resolve(cli: ["device-name": "quantum-dev-01"]).deviceName, "quantum-dev-01")
    }

    func testBothDisables() {
        assertRejected(cli: ["disable-v4": "true"], env: ["QUANTUM_DISABLE_V6": "true"], mentions: [
            "--disable-v4 (on the command line)", "--disable-v6 (in the environment)", "cannot both be set",
        ])
    }

    func testBadFlagText() {
        assertRejected(env: ["QUANTUM_DISABLE_V4": "yes"], mentions: ["'yes'", "--disable-v4", "true or false"])
    }

    func testPublicAddressOfDisabledFamily() {
        assertRejected(cli: ["public-v4": "192.0.2.1", "disable-v4": "true"], mentions: ["--public-v4 192.0.2.1", "--disable-v4"])
    }

    func testTLSCertificateAndKeyGoTogether() {
        assertRejected(cli: ["datastore-tls-cert": "/c.pem"], mentions: ["--datastore-tls-cert /c.pem", "--datastore-tls-key"])
        assertRejected(env: ["QUANTUM_DATASTORE_TLS_KEY": "/k.pem"], mentions: ["--datastore-tls-key /k.pem", "--datastore-tls-cert"])
    }

    func testBadDatastorePrefix() {
        for value in ["quantum", "/quantum/", "/", "/a//b", "/a b"] {
            assertRejected(cli: ["datastore-prefix": value], mentions: ["'\(value)'", "--datastore-prefix", "starts with '/'"])
        }
    }

    func testBadEndpoints() {
        for value in ["etcd", "etcd:0", "http://", "ftp://etcd:2379", "a:1,,b:2", "http://etcd:2379/v3", "[::1:2379"] {
            assertRejected(cli: ["datastore-endpoints": value], mentions: ["'\(value)'", "--datastore-endpoints"])
        }
        XCTAssertEqual(try resolve(cli: ["datastore-endpoints": "[::1]:2379,http://etcd,https://e.example:443/"])
            .datastoreEndpoints, ["[::1]:2379", "http://etcd", "https://e.example:443/"])
    }

    func testBadMTUAndLogLevel() {
        assertRejected(cli: ["mtu": "575"], mentions: ["'575'", "--mtu", "576-9000"])
        assertRejected(cli: ["mtu": "9001"], mentions: ["'9001'", "--mtu"])
        assertRejected(cli: ["log-level": "verbose"], mentions: ["'verbose'", "--log-level", "trace, debug"])
    }

    func testEmptyTextIsRejected() {
        // On the command line or in a file, empty text is a value, and a bad one; an empty
        // environment variable counts as unset (ConfigurationPrecedenceTests).
        assertRejected(cli: ["datastore-username": ""], mentions: ["''", "--datastore-username"])
        assertRejected(cli: ["conf-file": "/q.json"], files: ["/q.json": #"{"datastore-username": ""}"#],
                       mentions: ["''", "--datastore-username"])
    }
}
