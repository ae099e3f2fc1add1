import Foundation
import QuantumCore
import QuantumDatastore
import QuantumNode
@testable import QuantumStats
import XCTest

/// A snapshot of two workers and two peers with distinct numbers in every counter.
func sampleSnapshot() -> NodeSnapshot {
    let peerA = NodeSnapshot.PeerState(
        privateIP: IPv4Address("10.99.0.2")!, endpoint: "192.0.2.2:1099", publicKey: [UInt8](repeating: 1, count: 32),
        session: .established, lastHandshakeAge: 12_500_000_000,
        counters: [.txPackets: 50, .txBytes: 4200, .rxPackets: 51, .rxBytes: 4284, .rxDroppedPackets: 3,
                   .rxDroppedBytes: 300, .dropAuth: 2, .dropReplay: 1, .txDroppedPackets: 4, .txDroppedBytes: 400,
                   .dropNoSession: 4])
    let peerB = NodeSnapshot.PeerState(
        privateIP: IPv4Address("10.99.0.3")!, endpoint: nil, publicKey: [UInt8](repeating: 2, count: 32),
        session: .handshaking, lastHandshakeAge: nil, counters: [:])
    return NodeSnapshot(
        privateIP: IPv4Address("10.99.0.1")!, publicKey: [UInt8](repeating: 3, count: 32),
        queues: [[.txPackets: 30, .txBytes: 2000, .rxPackets: 20, .rxBytes: 1000, .rxDroppedPackets: 2, .rxDroppedBytes: 200,
                  .dropAuth: 2, .dropNoRoute: 7, .txDroppedPackets: 7, .txDroppedBytes: 700],
                 [.txPackets: 20, .txBytes: 2200, .rxPackets: 31, .rxBytes: 3284, .rxDroppedPackets: 1, .rxDroppedBytes: 100,
                  .dropReplay: 1, .dropHandshakeMAC1: 3, .dropHandshakeSize: 1]],
        control: [.handshakesInitiated: 5, .handshakesCompleted: 4, .handshakesRejected: 1, .handshakeTimeouts: 2],
        peers: [peerA, peerB])
}

final class StatsDocumentTests: XCTestCase {
    private func object(_ bytes: [UInt8]) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    /// `/stats` has upstream's field names and nesting, and sums the queues into the totals.
    func testStatsDocumentHasUpstreamShape() throws {
        let document = try object(StatsJSON.encode(StatsReport(sampleSnapshot())))
        XCTAssertEqual(Set(document.keys), ["tx", "rx"])
        let tx = try XCTUnwrap(document["tx"] as? [String: Any])
        XCTAssertEqual(Set(tx.keys), ["packets", "bytes", "droppedPackets", "droppedBytes", "links", "queues"])
        XCTAssertEqual(tx["packets"] as? Int, 50)
        XCTAssertEqual(tx["bytes"] as? Int, 4200)
        XCTAssertEqual(tx["droppedPackets"] as? Int, 7)
        XCTAssertEqual(tx["droppedBytes"] as? Int, 700)
        let queues = try XCTUnwrap(tx["queues"] as? [String: [String: Int]])
        XCTAssertEqual(queues["0"], ["packets": 30, "bytes": 2000, "droppedPackets": 7, "droppedBytes": 700])
        XCTAssertEqual(queues["1"], ["packets": 20, "bytes": 2200, "droppedPackets": 0, "droppedBytes": 0])
        let rx = try XCTUnwrap(document["rx"] as? [String: Any])
        XCTAssertEqual(rx["packets"] as? Int, 51)
        XCTAssertEqual(rx["droppedPackets"] as? Int, 3)
        let links = try XCTUnwrap(rx["links"] as? [String: [String: Int]])
        XCTAssertEqual(links["10.99.0.2"], ["packets": 51, "bytes": 4284, "droppedPackets": 3, "droppedBytes": 300])
        XCTAssertEqual(links["10.99.0.3"], ["packets": 0, "bytes": 0, "droppedPackets": 0, "droppedBytes": 0])
        let txLinks = try XCTUnwrap(tx["links"] as? [String: [String: Int]])
        XCTAssertEqual(txLinks["10.99.0.2"], ["packets": 50, "bytes": 4200, "droppedPackets": 4, "droppedBytes": 400])
    }

    /// `/peers` lists every peer with its endpoint, key, session, handshake age, counts and path.
    func testPeersDocumentListsWhatAnOperatorNeeds() throws {
        let bytes = try StatsJSON.encode(sampleSnapshot().peers.map(PeerReport.init))
        let peers = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes)) as? [[String: Any]])
        XCTAssertEqual(peers.count, 2)
        XCTAssertEqual(peers[0]["privateIP"] as? String, "10.99.0.2")
        XCTAssertEqual(peers[0]["endpoint"] as? String, "192.0.2.2:1099")
        XCTAssertEqual(peers[0]["publicKey"] as? String, Data(repeating: 1, count: 32).base64EncodedString())
        XCTAssertEqual(peers[0]["session"] as? String, "established")
        XCTAssertEqual(try XCTUnwrap(peers[0]["lastHandshakeSecondsAgo"] as? Double), 12.5, accuracy: 1e-9)
        XCTAssertEqual(peers[0]["path"] as? String, "direct")
        XCTAssertEqual((peers[0]["tx"] as? [String: Int])?["packets"], 50)
        XCTAssertEqual((peers[0]["rx"] as? [String: Int])?["bytes"], 4284)
        XCTAssertEqual(peers[1]["session"] as? String, "handshaking")
        XCTAssertNil(peers[1]["endpoint"])
        XCTAssertNil(peers[1]["lastHandshakeSecondsAgo"])
        // What `quantum status --json` decodes is what the endpoint encodes.
        XCTAssertEqual(try JSONDecoder().decode([PeerReport].self, from: Data(bytes)),
                       sampleSnapshot().peers.map(PeerReport.init))
    }

    /// `/node` carries the node's identity, peer and session counts and the datastore state.
    func testNodeDocument() throws {
        let sync = NetworkRegistry.SyncStatus(watchConnected: true, lastSyncAge: .milliseconds(2500))
        let document = try object(StatsJSON.encode(NodeReport(sampleSnapshot(), sync: sync)))
        XCTAssertEqual(document["privateIP"] as? String, "10.99.0.1")
        XCTAssertEqual(document["peers"] as? Int, 2)
        XCTAssertEqual(document["sessions"] as? Int, 1)
        let datastore = try XCTUnwrap(document["datastore"] as? [String: Any])
        XCTAssertEqual(datastore["watchConnected"] as? Bool, true)
        XCTAssertEqual(try XCTUnwrap(datastore["lastSyncSecondsAgo"] as? Double), 2.5, accuracy: 1e-9)
    }
}
