import QuantumCommand
import QuantumCore
import XCTest

/// `--floating-ips`, `--datastore-floating-ip-ttl`, `--forward`, `--gateway` and
/// `--serve-gateway` from every source, and the combinations refused at start-up.
final class RoutingOptionTests: XCTestCase {
    func testDefaults() throws {
        let configuration = try resolve()
        XCTAssertEqual(configuration.floatingIPs, [])
        XCTAssertEqual(configuration.datastoreFloatingIPTTL, 10)
        XCTAssertFalse(configuration.forward)
        XCTAssertNil(configuration.gateway)
        XCTAssertFalse(configuration.serveGateway)
    }

    func testEverySourceSetsThem() throws {
        let fromCommandLine = try resolve(cli: ["floating-ips": "10.99.2.1, 10.99.2.2", "datastore-floating-ip-ttl": "4s",
                                                "forward": "true", "gateway": "10.99.0.1"])
        XCTAssertEqual(fromCommandLine.floatingIPs, [IPv4Address("10.99.2.1")!, IPv4Address("10.99.2.2")!])
        XCTAssertEqual(fromCommandLine.datastoreFloatingIPTTL, 4)
        XCTAssertTrue(fromCommandLine.forward)
        XCTAssertEqual(fromCommandLine.gateway, IPv4Address("10.99.0.1"))

        let fromEnvironment = try resolve(env: ["QUANTUM_FLOATING_IPS": "10.99.3.7", "QUANTUM_SERVE_GATEWAY": "true"])
        XCTAssertEqual(fromEnvironment.floatingIPs, [IPv4Address("10.99.3.7")!])
        XCTAssertTrue(fromEnvironment.serveGateway)

        let fromFile = try resolve(cli: ["conf-file": "/q.yml"], files: ["/q.yml": """
            floating-ips: [10.99.2.9]
            datastore-floating-ip-ttl: 30s
            serve-gateway: true
            """])
        XCTAssertEqual(fromFile.floatingIPs, [IPv4Address("10.99.2.9")!])
        XCTAssertEqual(fromFile.datastoreFloatingIPTTL, 30)
        XCTAssertTrue(fromFile.serveGateway)
    }

    func testFloatingIPsOutsideTheFloatingRangeOrNetworkAreRefused() {
        assertRejected(cli: ["floating-ips": "10.99.2.1,10.99.0.5"], mentions: ["--floating-ips", "10.99.0.5", "floating range 10.99.2.0/23"])
        assertRejected(cli: ["floating-ips": "10.98.2.1"], mentions: ["10.98.2.1", "outside the network 10.99.0.0/16"])
        assertRejected(cli: ["floating-ips": "10.99.2.1,10.99.2.1"], mentions: ["--floating-ips", "distinct"])
        assertRejected(cli: ["floating-ips": "10.99.2.x"], mentions: ["--floating-ips", "10.99.2.x"])
    }

    func testFloatingTTLHasAMinimumOfTwoSeconds() throws {
        assertRejected(cli: ["datastore-floating-ip-ttl": "1s"], mentions: ["--datastore-floating-ip-ttl", "1s", "at least 2s"])
        XCTAssertEqual(try resolve(cli: ["datastore-floating-ip-ttl": "2s"]).datastoreFloatingIPTTL, 2)
    }

    func testGatewayCombinationsAreChecked() {
        assertRejected(cli: ["forward": "true"], mentions: ["--forward", "needs --gateway"])
        assertRejected(cli: ["forward": "true", "gateway": "192.0.2.1"], mentions: ["--gateway 192.0.2.1", "outside the network"])
        assertRejected(cli: ["gateway": "10.99.0.1"], mentions: ["--gateway 10.99.0.1", "without --forward"])
        assertRejected(cli: ["forward": "true", "gateway": "10.99.0.1", "serve-gateway": "true"],
                       mentions: ["--forward", "--serve-gateway", "cannot both be set"])
        assertRejected(cli: ["forward": "true", "gateway": "10.99.0.1", "private-ip": "10.99.0.1"],
                       mentions: ["--gateway 10.99.0.1", "own --private-ip"])
    }
}
