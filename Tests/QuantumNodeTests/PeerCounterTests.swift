import Foundation
import QuantumCore
import QuantumCrypto
import XCTest

@testable import QuantumNode

/// Per-peer counters on the simulated network: what each peer's cells count, that they
/// outlive sessions, and what a snapshot shows.
final class PeerCounterTests: XCTestCase {
    private var network = SimulatedNetwork()

    override func setUp() {
        network = SimulatedNetwork()
    }

    private func count(_ node: SimulatedNode, _ peer: SimulatedNode, _ name: PeerCounter) -> UInt64 {
        node.peer(peer.address)?.signals.traffic.total(name) ?? 0
    }

    /// Seals and opens count per peer: packets and inner bytes, staged ones included, and
    /// nothing for the peer that took no part.
    func testSealedAndOpenedPacketsCountForTheirPeer() {
        let a = network.addNode("10.7.0.1")
        let b = network.addNode("10.7.0.2")
        let c = network.addNode("10.7.0.3")
        network.connectAll()
        var bytes: UInt64 = 0
        for size in [10, 20, 30, 40, 50] {
            bytes += UInt64(a.send(to: b.address, payload: [UInt8](repeating: 7, count: size)).count)
            network.settle()
        }
        XCTAssertEqual(b.delivered.count, 5)
        XCTAssertEqual(count(a, b, .txPackets), 5, "the staged first packet and four sealed by the worker")
        XCTAssertEqual(count(a, b, .txBytes), bytes)
        XCTAssertEqual(count(b, a, .rxPackets), 5)
        XCTAssertEqual(count(b, a, .rxBytes), bytes)
        XCTAssertEqual(count(b, a, .txPackets), 0, "the confirming keepalive is not data")
        XCTAssertEqual(count(a, c, .txPackets) + count(c, a, .rxPackets) + count(b, c, .rxPackets), 0)
        // Counter cells exist only for peers something was counted for.
        XCTAssertEqual(a.peer(b.address)?.signals.traffic.isAllocated, true)
        XCTAssertEqual(a.peer(c.address)?.signals.traffic.isAllocated, false, "a silent peer costs no counter memory")
        XCTAssertEqual(c.peer(a.address)?.signals.traffic.isAllocated, false)
    }

    /// Threads that count for a peer for the first time at once all land in the same cells.
    func testFirstCountsRacingFromEveryThreadAreAllKept() {
        for _ in 0..<50 {
            let traffic = PeerTraffic(slots: 4)
            XCTAssertFalse(traffic.isAllocated)
            XCTAssertEqual(traffic.total(.rxBytes), 0)
            DispatchQueue.concurrentPerform(iterations: 4) { slot in
                for _ in 0..<1000 { traffic.add(.rxBytes, 3, slot: slot) }
                traffic.add(.rxPackets, slot: slot)
            }
            XCTAssertEqual(traffic.total(.rxBytes), 12_000)
            XCTAssertEqual(traffic.total(.rxPackets), 4)
        }
    }

    /// Drops whose reason belongs to a peer count in that peer's cells, as packets and bytes.
    func testAuthReplayAndSpoofedDropsCountForThePeer() throws {
        let a = network.addNode("10.7.0.1")
        let b = network.addNode("10.7.0.2")
        network.connectAll()
        a.send(to: b.address)
        network.settle()
        // Replay: the same sealed datagram twice.
        let packet = ipv4Packet(from: a.address, to: b.address, payload: [9])
        let sealed = try seal(packet, with: XCTUnwrap(a.peer(b.address)?.current))
        b.receive(.init(bytes: sealed, source: a.endpoint, destination: b.endpoint))
        b.receive(.init(bytes: sealed, source: a.endpoint, destination: b.endpoint))
        // Authentication: a flipped tag byte.
        var forged = try seal(packet, with: XCTUnwrap(a.peer(b.address)?.current))
        forged[forged.count - 1] ^= 1
        b.receive(.init(bytes: forged, source: a.endpoint, destination: b.endpoint))
        // Spoofed: a's session carrying another node's inner source.
        let spoofed = try seal(ipv4Packet(from: IPv4Address("10.7.0.9")!, to: b.address, payload: [1]),
                               with: XCTUnwrap(a.peer(b.address)?.current))
        b.receive(.init(bytes: spoofed, source: a.endpoint, destination: b.endpoint))
        XCTAssertEqual(count(b, a, .dropReplay), 1)
        XCTAssertEqual(count(b, a, .dropAuth), 1)
        XCTAssertEqual(count(b, a, .dropSpoofed), 1)
        XCTAssertEqual(count(b, a, .rxDroppedPackets), 3)
        XCTAssertEqual(count(b, a, .rxDroppedBytes), UInt64(sealed.count + forged.count + spoofed.count))
        XCTAssertEqual(count(b, a, .rxPackets), 2, "the first packet and the first copy of the replayed one")
        XCTAssertEqual(b.path.counters.value(.rxDroppedPackets), 3)
        XCTAssertEqual(b.path.counters.value(.dropReplay), 1)
    }

    /// The counters belong to the peer: a new session (rekey) keeps counting in the same
    /// cells, which were allocated once, when the peer was created.
    func testCountsSurviveANewSession() throws {
        let a = network.addNode("10.7.0.1")
        let b = network.addNode("10.7.0.2")
        network.connectAll()
        let cells = try ObjectIdentifier(XCTUnwrap(a.peer(b.address)?.signals.traffic))
        a.send(to: b.address)
        network.settle()
        let first = try XCTUnwrap(a.peer(b.address)?.current)
        // Past the rekey age the next packet goes out on the old session and asks for a new one.
        network.advance(by: SessionLimits.rekeyAfterTime + seconds(1))
        a.send(to: b.address)
        network.settle()
        XCTAssertFalse(try XCTUnwrap(a.peer(b.address)?.current) === first, "a rekeyed")
        a.send(to: b.address)
        network.settle()
        XCTAssertEqual(b.delivered.count, 3)
        XCTAssertEqual(count(a, b, .txPackets), 3)
        XCTAssertEqual(count(b, a, .rxPackets), 3)
        XCTAssertEqual(try ObjectIdentifier(XCTUnwrap(a.peer(b.address)?.signals.traffic)), cells)
        // The workers write into those very cells, through the table's route and inbound entries.
        XCTAssertEqual(try ObjectIdentifier(XCTUnwrap(a.table.routes[b.address]?.signals.traffic)), cells)
        XCTAssertTrue(a.table.inbound.values.allSatisfy { ObjectIdentifier($0.signals.traffic) == cells })
    }

    /// A snapshot shows each peer's endpoint, key, session state, handshake age and counters.
    func testSnapshotShowsPeersAsPublished() throws {
        let a = network.addNode("10.7.0.1")
        let b = network.addNode("10.7.0.2")
        let c = network.addNode("10.7.0.3")
        network.connectAll()
        network.unreachable = [c.endpoint]
        a.send(to: b.address)
        a.send(to: c.address)
        network.advance(by: seconds(3))
        XCTAssertEqual(a.control.peerStates(now: network.clock.now()).count, 0, "described only when asked")
        a.control.requestDirectory()
        a.control.step()
        let peers = a.control.peerStates(now: network.clock.now())
        XCTAssertEqual(peers.map(\.privateIP), [b.address, c.address])
        XCTAssertEqual(peers[0].session, .established)
        XCTAssertEqual(peers[0].endpoint, b.endpoint.description)
        XCTAssertEqual(peers[0].publicKey, b.keyPair.publicKey)
        let age = try XCTUnwrap(peers[0].lastHandshakeAge)
        XCTAssertTrue((seconds(2.5)...seconds(3.25)).contains(age), "handshake age \(age)")
        XCTAssertEqual(peers[0].counters[.txPackets], 1)
        XCTAssertEqual(peers[1].session, .handshaking, "c does not answer")
        XCTAssertNil(peers[1].lastHandshakeAge)
        XCTAssertEqual(peers[1].counters[.txPackets], 0)
    }

    private func seal(_ packet: [UInt8], with session: Session) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: packet.count + WireFormat.transportOverhead)
        buffer.replaceSubrange(WireFormat.transportHeaderSize..<WireFormat.transportHeaderSize + packet.count, with: packet)
        let length = try XCTUnwrap(buffer.withUnsafeMutableBytes {
            session.seal($0.baseAddress!, payloadLength: packet.count, worker: 0, flags: 0)
        })
        return Array(buffer[0..<length])
    }
}
