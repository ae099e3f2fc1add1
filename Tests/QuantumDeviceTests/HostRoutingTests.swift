import QuantumCore
import XCTest

@testable import QuantumDevice

/// The text the gateway roles read from and hand to the host's tools (the tools themselves
/// run in the integration cases gateway_forward and floating_*).
final class HostRoutingTests: XCTestCase {
    func testTheRouterAndDeviceAreReadFromIpRouteGet() {
        let viaRouter = "192.0.2.10 via 10.201.99.254 dev eth0 src 10.201.99.2 uid 0 \\    cache "
        XCTAssertEqual(GatewayClientRouting.word(after: "via", in: viaRouter), "10.201.99.254")
        XCTAssertEqual(GatewayClientRouting.word(after: "dev", in: viaRouter), "eth0")
        let connected = "10.201.99.254 dev eth0 src 10.201.99.2 uid 0 \\    cache "
        XCTAssertNil(GatewayClientRouting.word(after: "via", in: connected), "a connected address needs no pinned route")
        XCTAssertNil(GatewayClientRouting.word(after: "dev", in: "10.0.0.1 dev"))
    }

    func testTheNftablesTableIsNamedAfterTheDeviceAndMasqueradesOnlyTrafficLeavingTheNetwork() throws {
        XCTAssertEqual(GatewayServerForwarding.tableName(device: "quantum0"), "quantum_quantum0")
        XCTAssertEqual(GatewayServerForwarding.tableName(device: "vpn-a.1"), "quantum_vpn_a_1")
        let ruleset = GatewayServerForwarding.ruleset(device: "quantum0", network: try IPv4Prefix(parsing: "10.99.0.0/16"))
        XCTAssertTrue(ruleset.contains("table inet quantum_quantum0 {"))
        XCTAssertTrue(ruleset.contains("type nat hook postrouting priority srcnat"))
        XCTAssertTrue(ruleset.contains("ip saddr 10.99.0.0/16 ip daddr != 10.99.0.0/16 masquerade"))
    }
}
