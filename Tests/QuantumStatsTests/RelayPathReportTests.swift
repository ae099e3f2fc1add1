import QuantumCore
import QuantumDatastore
import QuantumNode
@testable import QuantumStats
import XCTest

/// `/peers` (and so `quantum status`) says per peer whether it is reached directly or through
/// whom, and `/metrics` has it as a gauge.
final class RelayPathReportTests: XCTestCase {
    private func peer(_ address: String = "10.99.0.2", relay: IPv4Address?) -> NodeSnapshot.PeerState {
        NodeSnapshot.PeerState(privateIP: IPv4Address(address)!, endpoint: "192.0.2.2:1099",
                               publicKey: [UInt8](repeating: 1, count: 32), session: .established,
                               lastHandshakeAge: 1, counters: [:], relay: relay)
    }

    func testPathNamesTheRelay() {
        XCTAssertEqual(PeerReport(peer(relay: nil)).path, "direct")
        XCTAssertEqual(PeerReport(peer(relay: IPv4Address("10.99.0.3")!)).path, "relayed via 10.99.0.3")
    }

    func testMetricsHaveAGaugePerPeer() {
        let snapshot = NodeSnapshot(privateIP: IPv4Address("10.99.0.1")!, publicKey: [UInt8](repeating: 3, count: 32),
                                    queues: [[:]], control: [:],
                                    peers: [peer(relay: IPv4Address("10.99.0.3")!), peer("10.99.0.4", relay: nil)])
        let text = String(decoding: MetricsText.render(snapshot, sync: .init(watchConnected: true, lastSyncAge: nil)),
                          as: UTF8.self)
        XCTAssertTrue(text.contains("quantum_peer_relayed{peer=\"10.99.0.2\"} 1"), text)
        XCTAssertTrue(text.contains("quantum_peer_relayed{peer=\"10.99.0.4\"} 0"), text)
    }
}
