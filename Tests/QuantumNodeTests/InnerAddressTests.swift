import QuantumCore
import XCTest

@testable import QuantumNode

/// Which inner sources and destinations each peer may use: floating IPs follow their
/// holder, a gateway client sends what lies outside the network to its gateway and accepts
/// outside sources from it alone, and only a serving gateway accepts outside destinations.
final class InnerAddressTests: XCTestCase {
    private var network = SimulatedNetwork()
    private let privateNetwork = try! IPv4Prefix(parsing: "10.7.0.0/24")
    private let floating = IPv4Address("10.7.0.200")!
    private let outside = IPv4Address("192.0.2.80")!

    override func setUp() {
        network = SimulatedNetwork()
    }

    private func node(_ address: String, gateway: String? = nil, serves: Bool = false) -> SimulatedNode {
        network.addNode(address) { configuration in
            configuration.network = self.privateNetwork
            configuration.gateway = gateway.flatMap { IPv4Address($0) }
            configuration.servesGateway = serves
        }
    }

    private func count(_ node: SimulatedNode, _ name: WorkerCounter) -> UInt64 { node.path.counters.value(name) }

    /// Every node learns the same holders, as they would from the datastore.
    private func hold(_ holders: [IPv4Address: IPv4Address]) {
        for node in network.nodes { node.control.setFloatingHolders(holders) }
        network.settle()
    }

    /// Opens every link once, so later packets go out at once.
    private func handshakeAll() {
        for sender in network.nodes {
            for receiver in network.nodes where receiver !== sender { sender.send(to: receiver.address) }
        }
        network.settle()
        for node in network.nodes { node.delivered.removeAll() }
    }

    func testFloatingIPGoesToItsHolderAndIsASourceOfTheHolderOnly() throws {
        let a = node("10.7.0.1"), b = node("10.7.0.2"), c = node("10.7.0.3")
        network.connectAll()
        handshakeAll()
        hold([floating: b.address])

        let toFloating = a.send(to: floating, payload: [1])
        network.settle()
        XCTAssertEqual(b.delivered, [toFloating], "the holder receives the floating IP's traffic")
        XCTAssertTrue(c.delivered.isEmpty)

        let reply = b.send(to: a.address, payload: [2], from: floating)
        c.send(to: a.address, payload: [3], from: floating)
        network.settle()
        XCTAssertEqual(a.delivered, [reply], "only the holder may send from the floating IP")
        XCTAssertEqual(count(a, .dropSpoofed), 1)

        // Failover: c holds it now; b's claim to it is gone everywhere.
        hold([floating: c.address])
        a.delivered.removeAll()
        b.delivered.removeAll()
        let afterFailover = a.send(to: floating, payload: [4])
        network.settle()
        XCTAssertEqual(c.delivered, [afterFailover])
        XCTAssertTrue(b.delivered.isEmpty)
        b.send(to: a.address, payload: [5], from: floating)
        network.settle()
        XCTAssertTrue(a.delivered.isEmpty)
        XCTAssertEqual(count(a, .dropSpoofed), 2)
    }

    func testAFormerHolderDropsTrafficForTheFloatingIP() throws {
        let a = node("10.7.0.1"), b = node("10.7.0.2"), c = node("10.7.0.3")
        network.connectAll()
        handshakeAll()
        hold([floating: b.address])
        // a still routes to b (its view is late) while b already gave the address up.
        b.control.setFloatingHolders([floating: c.address])
        network.settle()
        a.send(to: floating)
        network.settle()
        XCTAssertTrue(b.delivered.isEmpty)
        XCTAssertEqual(count(b, .dropDestination), 1)
    }

    func testGatewayClientSendsOutsideTrafficThroughItsGatewayOnly() throws {
        let client = node("10.7.0.1", gateway: "10.7.0.2"), gateway = node("10.7.0.2", serves: true)
        let other = node("10.7.0.3")
        network.connectAll()
        handshakeAll()

        let out = client.send(to: outside, payload: [1])
        network.settle()
        XCTAssertEqual(gateway.delivered, [out], "the serving gateway takes the outside destination")

        client.send(to: IPv4Address("10.7.0.77")!)
        XCTAssertEqual(count(client, .dropNoRoute), 1, "an unknown address inside the network is not sent to the gateway")

        let answer = gateway.send(to: client.address, payload: [2], from: outside)
        other.send(to: client.address, payload: [3], from: outside)
        gateway.send(to: client.address, payload: [4], from: other.address)
        network.settle()
        XCTAssertEqual(client.delivered, [answer], "outside sources come from the gateway alone, and it cannot pose as a node")
        XCTAssertEqual(count(client, .dropSpoofed), 2)

        other.send(to: outside)
        XCTAssertEqual(count(other, .dropNoRoute), 1, "a node without --forward has no route outside the network")
    }

    func testANodeThatDoesNotServeDropsOutsideDestinations() throws {
        let client = node("10.7.0.1", gateway: "10.7.0.2"), notServing = node("10.7.0.2")
        network.connectAll()
        handshakeAll()
        client.send(to: outside)
        network.settle()
        XCTAssertTrue(notServing.delivered.isEmpty)
        XCTAssertEqual(count(notServing, .dropDestination), 1)
    }
}
