import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumDevice
import XCTest

@testable import QuantumNode

/// NAT traversal and confirmed roaming on the simulated network. A node "behind NAT" sends
/// from another port than the one its mapping names; nothing listens at the named one.
final class NATTraversalTests: XCTestCase {
    private var network = SimulatedNetwork()

    override func setUp() {
        network = SimulatedNetwork()
    }

    private func at(_ port: UInt16) -> UDPEndpoint { UDPEndpoint(SimulatedNetwork.underlayIP, port: port, family: .ipv4) }

    /// `node`'s mapping with `candidates`, as the datastore would deliver it after a re-publish.
    private func update(_ node: SimulatedNode, candidates: [IPv4Endpoint]) -> MappingUpdate {
        var mapping = node.mapping
        mapping.candidates = candidates
        return MappingUpdate(address: node.address, mapping: mapping, createRevision: node.createRevision)
    }

    func testReplayedInitiationFromANewAddressDoesNotMoveTheEndpoint() throws {
        let a = network.addNode("10.7.0.1")
        let b = network.addNode("10.7.0.2")
        network.connectAll()
        // a's initiation is captured on the way (b never sees it) ...
        network.unreachable = [b.endpoint]
        let start = network.clock.now()
        a.send(to: b.address)
        network.settle()
        let initiation = try XCTUnwrap(network.sent(from: a.endpoint, since: start)
            .first { $0.datagram.bytes[0] == MessageType.initiation.rawValue }?.datagram.bytes)
        network.unreachable = []
        // ... and delivered to b from the attacker's address.
        let attacker = at(9_999)
        b.receive(.init(bytes: initiation, source: attacker, destination: b.endpoint))
        network.settle()
        let peer = try XCTUnwrap(b.peer(a.address))
        XCTAssertNotNil(peer.next, "b answered the initiation")
        XCTAssertEqual(peer.endpoint, a.endpoint, "an unconfirmed initiation moved b's endpoint for a")
        // b's traffic for a still goes to a.
        b.send(to: a.address)
        network.settle()
        XCTAssertEqual(a.delivered.count, 1, "b's packet did not reach a")
        XCTAssertEqual(b.peer(a.address)?.endpoint, a.endpoint)
    }

    func testConfirmedSessionFromANewAddressMovesTheEndpoint() throws {
        let a = network.addNode("10.7.0.1")
        let b = network.addNode("10.7.0.2")
        network.connectAll()
        // a sends from elsewhere than its mapping says (a NAT): its first transport packet on
        // the new session, authenticated, moves b's endpoint for it.
        a.endpoint = at(50_001)
        a.send(to: b.address)
        network.settle()
        XCTAssertEqual(b.delivered.count, 1)
        XCTAssertEqual(b.peer(a.address)?.endpoint, at(50_001))
        b.send(to: a.address)
        network.settle()
        XCTAssertEqual(a.delivered.count, 1, "b's answer did not follow a to its new address")
    }

    func testNodeWhoseAddressChangesRecoversWithinTheKeepalive() throws {
        let a = network.addNode("10.7.0.1") { $0.keepalive = seconds(2) }
        let b = network.addNode("10.7.0.2") { $0.keepalive = seconds(2) }
        network.connectAll()
        b.send(to: a.address)
        network.settle()
        XCTAssertEqual(a.delivered.count, 1)
        // a moves; b keeps sending one packet a second and a sends nothing but keepalives.
        a.endpoint = at(50_002)
        let moved = network.clock.now()
        var recoveredAt: UInt64?
        for _ in 0..<10 {
            let before = a.delivered.count
            network.advance(by: seconds(1)) { }
            b.send(to: a.address)
            network.settle()
            if a.delivered.count > before, recoveredAt == nil { recoveredAt = network.clock.now() }
        }
        let recovered = try XCTUnwrap(recoveredAt, "a never received again after moving")
        XCTAssertLessThanOrEqual(recovered - moved, seconds(3))
        XCTAssertEqual(b.peer(a.address)?.endpoint, at(50_002))
    }

    func testNodeBehindNATLearnsAndPublishesItsReflexiveEndpointWithoutTraffic() {
        let a = network.addNode("10.7.0.1") { $0.probesReflexiveEndpoint = true }
        let b = network.addNode("10.7.0.2") { $0.probesReflexiveEndpoint = true }
        _ = network.addNode("10.7.0.3")
        a.endpoint = at(50_003)
        network.connectAll()
        network.advance(by: seconds(1))
        XCTAssertEqual(a.control.reflexiveCandidates.current, [IPv4Endpoint(SimulatedNetwork.underlayIP, port: 50_003)])
        // b is where its mapping says: peers see it there, so it has nothing to publish.
        XCTAssertTrue(b.control.traversal.hasLearned)
        XCTAssertEqual(b.control.reflexiveCandidates.current, [])
        XCTAssertEqual(a.delivered.count + b.delivered.count, 0)
    }

    func testProbingAsksAFewPeersAtATimeAndStopsOnceAnswered() {
        let a = network.addNode("10.7.0.1") { $0.probesReflexiveEndpoint = true }
        // Seven peers that never answer, and one (asked last: peers are asked in address order).
        let silent = (2...8).map { network.addNode("10.7.0.\($0)") }
        let answering = network.addNode("10.7.0.9")
        network.unreachable = silent.map(\.endpoint)
        network.connectAll()
        var mostAsking = 0
        var learnedAt: UInt64?
        for _ in 0..<(400 * 4) {
            network.advance(by: ControlPlane.tickInterval)
            mostAsking = max(mostAsking, a.control.peers.values.filter { $0.pending != nil }.count)
            if learnedAt == nil, a.control.traversal.hasLearned { learnedAt = network.clock.now() }
        }
        XCTAssertEqual(mostAsking, NATTraversal.probeLimit)
        XCTAssertNotNil(learnedAt, "the answering peer was never asked")
        XCTAssertEqual(a.control.traversal.probed.count, silent.count + 1, "each peer is asked once")
        XCTAssertTrue(a.control.traversal.probed.contains(answering.address))
        // Nothing more once answered: one initiation (and its retries) per peer.
        let initiated = a.control.counters.value(.handshakesInitiated)
        network.advance(by: seconds(300))
        XCTAssertEqual(a.control.counters.value(.handshakesInitiated), initiated)
    }

    func testInitiationGoesToEveryCandidateAndTheAnsweringOneIsKept() throws {
        let a = network.addNode("10.7.0.1")
        let c = network.addNode("10.7.0.3")
        network.connectAll()
        // c is behind NAT at 50004 and published it; nothing listens at its configured port.
        c.endpoint = at(50_004)
        network.apply([update(c, candidates: [IPv4Endpoint(SimulatedNetwork.underlayIP, port: 50_004)])], to: a)
        let start = network.clock.now()
        a.send(to: c.address)
        network.settle()
        let initiations = network.sent(from: a.endpoint, since: start).filter { $0.datagram.bytes[0] == MessageType.initiation.rawValue }
        XCTAssertEqual(Set(initiations.map(\.datagram.destination.port)), [c.registeredPort, 50_004])
        XCTAssertEqual(c.delivered.count, 1)
        XCTAssertEqual(a.peer(c.address)?.endpoint, at(50_004))
        // A later change of c's mapping keeps the endpoint the session runs on.
        network.apply([update(c, candidates: [IPv4Endpoint(SimulatedNetwork.underlayIP, port: 50_004),
                                              IPv4Endpoint(SimulatedNetwork.underlayIP, port: 50_005)])], to: a)
        XCTAssertEqual(a.peer(c.address)?.endpoint, at(50_004))
    }

    func testTwoNodesBehindNATOpenAPathWhenTheyLearnEachOthersCandidates() {
        let a = network.addNode("10.7.0.1") { $0.probesReflexiveEndpoint = true }
        let b = network.addNode("10.7.0.2") { $0.probesReflexiveEndpoint = true }
        let hub = network.addNode("10.7.0.3")
        a.endpoint = at(50_006)
        b.endpoint = at(50_007)
        network.connectAll()
        network.advance(by: seconds(1))
        // Each learned its reflexive endpoint from the hub; the datastore delivers them.
        let learnedA = a.control.reflexiveCandidates.current
        let learnedB = b.control.reflexiveCandidates.current
        XCTAssertEqual(learnedA, [IPv4Endpoint(SimulatedNetwork.underlayIP, port: 50_006)])
        XCTAssertEqual(learnedB, [IPv4Endpoint(SimulatedNetwork.underlayIP, port: 50_007)])
        b.control.enqueue([update(a, candidates: learnedA)])
        a.control.enqueue([update(b, candidates: learnedB)])
        network.advance(by: seconds(1))
        // Without any data, a and b have a session on each other's reflexive endpoint.
        XCTAssertNotNil(a.peer(b.address)?.current)
        XCTAssertEqual(a.peer(b.address)?.endpoint, at(50_007))
        XCTAssertEqual(b.peer(a.address)?.endpoint, at(50_006))
        _ = hub
    }
}
