import QuantumCore
import QuantumDatastore
import QuantumNode
@testable import QuantumStats
import XCTest

/// Parses Prometheus text lines `name{label="v",…} value` into `"name{labels}" → value`.
func parseMetrics(_ bytes: [UInt8]) -> [String: Double] {
    var samples: [String: Double] = [:]
    for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
        samples[String(line[..<space])] = value
    }
    return samples
}

final class MetricsTextTests: XCTestCase {
    /// Every figure the brief asks for is in the text, with the snapshot's values.
    func testMetricsCarryTheSnapshotsValues() {
        let sync = NetworkRegistry.SyncStatus(watchConnected: true, lastSyncAge: .seconds(4))
        let samples = parseMetrics(MetricsText.render(sampleSnapshot(), sync: sync))
        XCTAssertEqual(samples["quantum_tx_packets_total"], 50)
        XCTAssertEqual(samples["quantum_rx_bytes_total"], 4284)
        XCTAssertEqual(samples[#"quantum_dropped_packets_total{reason="auth"}"#], 2)
        XCTAssertEqual(samples[#"quantum_dropped_packets_total{reason="replay"}"#], 1)
        XCTAssertEqual(samples[#"quantum_dropped_packets_total{reason="no_route"}"#], 7)
        XCTAssertEqual(samples[#"quantum_dropped_packets_total{reason="handshake_mac1"}"#], 3)
        XCTAssertEqual(samples[#"quantum_dropped_packets_total{reason="handshake_size"}"#], 1)
        XCTAssertEqual(samples["quantum_handshakes_initiated_total"], 5)
        XCTAssertEqual(samples["quantum_handshakes_completed_total"], 4)
        XCTAssertEqual(samples["quantum_handshakes_rejected_total"], 1)
        XCTAssertEqual(samples["quantum_handshake_timeouts_total"], 2)
        XCTAssertEqual(samples[#"quantum_peer_tx_packets_total{peer="10.99.0.2"}"#], 50)
        XCTAssertEqual(samples[#"quantum_peer_rx_bytes_total{peer="10.99.0.2"}"#], 4284)
        XCTAssertEqual(samples[#"quantum_peer_dropped_packets_total{peer="10.99.0.2",reason="auth"}"#], 2)
        XCTAssertEqual(samples[#"quantum_peer_dropped_packets_total{peer="10.99.0.2",reason="replay"}"#], 1)
        XCTAssertEqual(samples[#"quantum_peer_dropped_packets_total{peer="10.99.0.3",reason="spoofed"}"#], 0)
        XCTAssertEqual(samples["quantum_peers"], 2)
        XCTAssertEqual(samples["quantum_sessions"], 1)
        XCTAssertEqual(samples["quantum_datastore_watch_connected"], 1)
        XCTAssertEqual(samples["quantum_datastore_last_sync_age_seconds"], 4)
    }

    /// A node that never synced says so: disconnected, and no age to alert on by mistake.
    func testNeverSyncedHasNoAge() {
        let samples = parseMetrics(MetricsText.render(sampleSnapshot(),
                                                      sync: .init(watchConnected: false, lastSyncAge: nil)))
        XCTAssertEqual(samples["quantum_datastore_watch_connected"], 0)
        XCTAssertNil(samples["quantum_datastore_last_sync_age_seconds"])
    }
}
