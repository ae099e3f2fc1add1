import QuantumCore
import QuantumCrypto
import QuantumDevice
import XCTest

@testable import QuantumNode

/// Workers refuse handshake messages of the wrong size or with a bad mac1 before they
/// reach the control thread, so junk cannot fill its backlog.
final class HandshakeScreenTests: XCTestCase {
    private var network = SimulatedNetwork()
    private let stranger = UDPEndpoint(SimulatedNetwork.underlayIP, port: 50_000, family: .ipv4)

    override func setUp() {
        network = SimulatedNetwork()
    }

    /// An initiation addressed to `node` by a node it does not know (valid size and mac1).
    private func initiation(to node: SimulatedNode) throws -> [UInt8] {
        try Handshaker(localKeys: .generate())
            .makeInitiation(peerPublicKey: node.keyPair.publicKey, senderIndex: 7, timestamp: network.clock.timestamp())
            .message
    }

    /// Hands `bytes` to `node`'s worker as a datagram from an unknown endpoint.
    private func deliver(_ bytes: [UInt8], to node: SimulatedNode) {
        node.receive(.init(bytes: bytes, source: stranger, destination: node.endpoint))
    }

    func testRightSizedInitiationWithBadMAC1IsCountedAndNeverQueued() throws {
        let node = network.addNode("10.8.0.1")
        var junk = try initiation(to: node)
        junk[WireFormat.initiationSize - 2 * WireFormat.macSize] ^= 1
        deliver(junk, to: node)
        // Addressed to another node's key: its mac1 is valid, but not for this node.
        let other = network.addNode("10.8.0.2")
        deliver(try initiation(to: other), to: node)

        XCTAssertEqual(node.path.counters.value(.dropHandshakeMAC1), 2)
        XCTAssertEqual(node.path.counters.value(.rxDroppedPackets), 2)
        XCTAssertEqual(node.path.counters.value(.dropHandshakeSize), 0)
        XCTAssertEqual(node.control.pendingEventCount, 0, "junk reached the control thread's inbox")
    }

    func testHandshakeMessagesOfTheWrongSizeAreCountedAndNeverQueued() throws {
        let node = network.addNode("10.8.0.1")
        let valid = try initiation(to: node)
        let initiations = [[MessageType.initiation.rawValue], Array(valid.dropLast()), valid + [0]]
        let responses = [WireFormat.responseSize - 1, WireFormat.responseSize + 1].map {
            [MessageType.response.rawValue] + [UInt8](repeating: 0, count: $0 - 1)
        }
        for message in initiations + responses { deliver(message, to: node) }

        XCTAssertEqual(node.path.counters.value(.dropHandshakeSize), 5)
        XCTAssertEqual(node.path.counters.value(.dropHandshakeMAC1), 0)
        XCTAssertEqual(node.control.pendingEventCount, 0, "a wrongly sized message reached the control thread's inbox")
    }

    func testValidInitiationIsQueuedForTheControlThread() throws {
        let node = network.addNode("10.8.0.1")
        deliver(try initiation(to: node), to: node)

        XCTAssertEqual(node.control.pendingEventCount, 1)
        XCTAssertEqual(node.path.counters.value(.rxDroppedPackets), 0)
    }

    func testValidHandshakeStillCompletesThroughTheScreen() {
        let a = network.addNode("10.8.0.1")
        let b = network.addNode("10.8.0.2")
        network.connectAll()
        let packet = a.send(to: b.address)
        network.settle()

        XCTAssertEqual(b.delivered, [packet])
        XCTAssertEqual(a.control.counters.value(.handshakesCompleted) + b.control.counters.value(.handshakesCompleted), 2)
        for node in [a, b] {
            XCTAssertEqual(node.path.counters.value(.dropHandshakeSize), 0)
            XCTAssertEqual(node.path.counters.value(.dropHandshakeMAC1), 0)
        }
    }
}
