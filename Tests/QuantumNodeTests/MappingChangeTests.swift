import QuantumCore
import QuantumCrypto
import QuantumDatastore
import XCTest

@testable import QuantumNode

/// How the control plane takes the datastore's changes: who owns a public key, the
/// removal grace, and bounded work and memory under churn. Fake clock, no threads.
final class MappingChangeTests: XCTestCase {
    private var network = SimulatedNetwork()

    override func setUp() {
        network = SimulatedNetwork()
    }

    private func route(_ node: SimulatedNode, _ address: String) -> ForwardingTable.Route? {
        node.table.routes[IPv4Address(address)!]
    }

    /// A copy of `holder`'s mapping published at `address` with revision `revision`.
    private func copy(of holder: SimulatedNode, at address: String, revision: Int64) -> MappingUpdate {
        var mapping = holder.mapping
        mapping.privateIP = IPv4Address(address)!
        return MappingUpdate(address: mapping.privateIP, mapping: mapping, createRevision: revision)
    }

    func testTheMappingCreatedLastOwnsASharedKey() throws {
        let a = network.addNode("10.7.0.1")
        let c = network.addNode("10.7.0.3")
        // A stale copy of c's key at 10.7.0.2, created before c's mapping; given in both orders.
        let stale = copy(of: c, at: "10.7.0.2", revision: c.createRevision - 100)
        network.apply([stale], to: a)
        a.control.enqueue([a.update, c.update])
        network.apply([a.update, c.update], to: c)
        XCTAssertNotNil(route(a, "10.7.0.3"))
        XCTAssertNil(route(a, "10.7.0.2"), "the older mapping with the same key gets no route")
        XCTAssertNil(a.peer(IPv4Address("10.7.0.2")!))
        // c's handshake is bound to c's address, and its packets arrive.
        let packet = c.send(to: a.address)
        network.settle()
        XCTAssertEqual(a.delivered, [packet])
        XCTAssertNotNil(a.peer(c.address)?.current)
        XCTAssertEqual(a.path.counters.value(.dropSpoofed), 0)
    }

    func testALaterCopyTakesTheKeyAndTheOriginalOwnsItAgainWhenTheCopyGoes() throws {
        let a = network.addNode("10.7.0.1", removalGrace: 0)
        let c = network.addNode("10.7.0.3")
        network.connectAll()
        network.apply([copy(of: c, at: "10.7.0.2", revision: network.newRevision())], to: a)
        XCTAssertNil(route(a, "10.7.0.3"), "the earlier mapping lost its key")
        XCTAssertNotNil(route(a, "10.7.0.2"))
        // c cannot get a session for its own address while the copy owns the key.
        c.send(to: a.address)
        network.settle()
        XCTAssertTrue(a.delivered.isEmpty)
        // The copy goes: c's mapping owns its key again.
        network.apply([MappingUpdate(address: IPv4Address("10.7.0.2")!, mapping: nil, createRevision: 0)], to: a)
        XCTAssertNil(route(a, "10.7.0.2"))
        XCTAssertNotNil(route(a, "10.7.0.3"))
        // c still seals with the session a bound to the copy (now gone): a offers a new one.
        network.advance(by: seconds(2)) { c.send(to: a.address) }
        XCTAssertNotNil(a.peer(c.address)?.current)
        XCTAssertFalse(a.delivered.isEmpty)
        c.send(to: a.address, payload: [9])
        network.settle()
        XCTAssertEqual(a.delivered.last, ipv4Packet(from: c.address, to: a.address, payload: [9]))
    }

    func testRemovedPeerKeepsFlowingThroughTheGraceThenGoes() {
        let a = network.addNode("10.7.0.1")
        let b = network.addNode("10.7.0.2")
        network.connectAll()
        a.send(to: b.address)
        network.settle()
        a.control.enqueue([MappingUpdate(address: b.address, mapping: nil, createRevision: 0)])
        network.advance(by: seconds(119)) { a.send(to: b.address) }
        XCTAssertEqual(b.delivered.count, 1 + 119 * 4, "every packet during the grace arrived")
        XCTAssertEqual(a.path.counters.value(.dropNoRoute), 0)
        network.advance(by: seconds(1.25))
        XCTAssertNil(route(a, "10.7.0.2"))
        XCTAssertNil(a.peer(b.address))
        a.send(to: b.address)
        XCTAssertEqual(a.path.counters.value(.dropNoRoute), 1)
    }

    func testPeerBackWithinTheGraceKeepsItsSessionsUnlessItsKeyChanged() throws {
        let a = network.addNode("10.7.0.1")
        let b = network.addNode("10.7.0.2")
        network.connectAll()
        a.send(to: b.address)
        network.settle()
        let session = try XCTUnwrap(a.peer(b.address)?.current)
        // The prefix is wiped and refilled a minute later with the same mapping.
        a.control.enqueue([MappingUpdate(address: b.address, mapping: nil, createRevision: 0)])
        network.advance(by: seconds(60))
        a.control.enqueue([MappingUpdate(address: b.address, mapping: b.mapping, createRevision: network.newRevision())])
        network.advance(by: seconds(100))
        XCTAssertTrue(a.peer(b.address)?.current === session, "same key: the session survived")
        XCTAssertNotNil(route(a, "10.7.0.2"))
        // Removed and back with another key: the old sessions are gone.
        a.control.enqueue([MappingUpdate(address: b.address, mapping: nil, createRevision: 0)])
        network.advance(by: seconds(1))
        var rekeyed = b.mapping
        rekeyed.publicKey = StaticKeyPair.generate().publicKey
        network.apply([MappingUpdate(address: b.address, mapping: rekeyed, createRevision: network.newRevision())], to: a)
        XCTAssertNil(a.peer(b.address)?.current)
        XCTAssertNil(route(a, "10.7.0.2")?.session)
        XCTAssertNil(a.table.inbound[session.localIndex])
    }

    /// 10,000 mappings, as many distinct addresses and keys.
    private func churn(_ count: Int) -> [MappingUpdate] {
        (0..<count).map { i in
            let address = IPv4Address(0x0a08_0000 + UInt32(i) + 1)
            var key = [UInt8](repeating: 0x5a, count: 32)
            withUnsafeBytes(of: UInt32(i).littleEndian) { key.replaceSubrange(0..<4, with: $0) }
            let mapping = Mapping(machineID: String(repeating: "ef", count: 16), privateIP: address,
                                  ipv4: SimulatedNetwork.underlayIP, ipv6: nil, port: 50_000, publicKey: key)
            return MappingUpdate(address: address, mapping: mapping, createRevision: Int64(i + 10))
        }
    }

    func testTenThousandAdditionsOneByOneEndInTheTableWithFewPublications() {
        let a = network.addNode("10.7.0.1")
        let updates = churn(10_000)
        let before = a.tables.generation.load(ordering: .relaxed)
        // One update per call, a millisecond apart, the control loop turning after each.
        for update in updates {
            a.control.enqueue([update])
            XCTAssertLessThanOrEqual(a.control.pendingMappingCount, 1)
            network.clock.advance(by: 1_000_000)
            a.control.step()
        }
        let during = a.tables.generation.load(ordering: .relaxed) - before
        // 10 s of churn: at most one table per 200 ms window (plus the first, at once).
        XCTAssertLessThanOrEqual(during, 10_000 / 200 + 1)
        XCTAssertGreaterThanOrEqual(during, 10_000 / 200 - 1)
        // Once the churn stops, the last changes are published within the window.
        network.clock.advance(by: ControlPlane.mappingPublishInterval)
        a.control.step()
        XCTAssertEqual(a.table.routes.count, 10_000)
        XCTAssertEqual(a.control.peers.count, 10_000)
        XCTAssertEqual(a.control.claimants.count, 10_000)
    }

    func testPendingChangesAreBoundedByTheAddresses() {
        let a = network.addNode("10.7.0.1")
        let updates = churn(100)
        // Without the control thread taking any, 10,000 changes to 100 addresses.
        for round in 0..<100 {
            for update in updates { a.control.enqueue([update]) }
            XCTAssertEqual(a.control.pendingMappingCount, 100, "round \(round)")
        }
        a.control.step()
        XCTAssertEqual(a.control.pendingMappingCount, 0)
        XCTAssertEqual(a.table.routes.count, 100)
    }

    func testAChangeAfterAQuietSpellIsPublishedAtOnce() {
        let a = network.addNode("10.7.0.1")
        let b = network.addNode("10.7.0.2")
        network.advance(by: seconds(1))
        a.control.enqueue([b.update])
        a.control.step()
        XCTAssertNotNil(route(a, "10.7.0.2"))
    }
}
