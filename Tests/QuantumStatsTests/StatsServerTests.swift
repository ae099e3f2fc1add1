import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import QuantumDatastore
import QuantumNode
@testable import QuantumStats
import XCTest

/// The endpoint over real HTTP on loopback, and `quantum status`'s client against it.
final class StatsServerTests: XCTestCase {
    private let source = StatsSource(snapshot: { sampleSnapshot() },
                                     sync: { .init(watchConnected: true, lastSyncAge: .seconds(3)) })

    private func start(port: Int = 0) async throws -> StatsServer {
        try await StatsServer.start(host: "127.0.0.1", port: port, route: "/custom-stats", source: source,
                                    logger: Logger(label: "test"))
    }

    private func request(_ method: HTTPMethod, _ path: String, port: Int) async throws -> (HTTPResponseStatus, HTTPHeaders, String) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (response.status, response.headers, String(buffer: body))
    }

    func testDocumentsAreServedAndBadRequestsRefused() async throws {
        let server = try await start()
        defer { server.stop() }
        let (status, headers, body) = try await request(.GET, "/custom-stats", port: server.port)
        XCTAssertEqual(status, .ok)
        XCTAssertEqual(headers.first(name: "Content-Type"), "application/json")
        XCTAssertEqual(try JSONDecoder().decode(StatsReport.self, from: Data(body.utf8)), StatsReport(sampleSnapshot()))

        let (metricsStatus, metricsHeaders, metrics) = try await request(.GET, "/metrics", port: server.port)
        XCTAssertEqual(metricsStatus, .ok)
        XCTAssertEqual(metricsHeaders.first(name: "Content-Type"), StatsRouter.prometheusContentType)
        XCTAssertEqual(parseMetrics(Array(metrics.utf8))["quantum_datastore_last_sync_age_seconds"], 3)

        let (peersStatus, _, peers) = try await request(.GET, "/peers?pretty", port: server.port)
        XCTAssertEqual(peersStatus, .ok)
        XCTAssertTrue(peers.contains("\n"), "pretty-printed")
        XCTAssertEqual(try JSONDecoder().decode([PeerReport].self, from: Data(peers.utf8)).count, 2)

        let (missing, _, missingBody) = try await request(.GET, "/stats", port: server.port)
        XCTAssertEqual(missing, .notFound, "the route is configurable; /stats is not served under another route")
        XCTAssertTrue(missingBody.contains("/custom-stats"))
        let (notAllowed, allow, _) = try await request(.POST, "/metrics", port: server.port)
        XCTAssertEqual(notAllowed, .methodNotAllowed)
        XCTAssertEqual(allow.first(name: "Allow"), "GET, HEAD")
        let (deleted, _, _) = try await request(.DELETE, "/custom-stats", port: server.port)
        XCTAssertEqual(deleted, .methodNotAllowed)
        // Still serving after the refusals.
        let (again, _, _) = try await request(.GET, "/node", port: server.port)
        XCTAssertEqual(again, .ok)
    }

    /// SO_REUSEPORT: a second endpoint (the new process of a rolling restart) binds the
    /// port the first one still holds.
    func testASecondEndpointBindsTheSamePort() async throws {
        let first = try await start()
        defer { first.stop() }
        let second = try await start(port: first.port)
        defer { second.stop() }
        XCTAssertEqual(second.port, first.port)
    }

    func testStatusReadsTheEndpointAndRendersATable() async throws {
        let server = try await start()
        defer { server.stop() }
        let report = try await StatusClient.fetch(host: "127.0.0.1", port: server.port)
        XCTAssertEqual(report.node.privateIP, "10.99.0.1")
        XCTAssertEqual(report.peers.map(\.privateIP), ["10.99.0.2", "10.99.0.3"])
        let table = StatusTable.render(report)
        XCTAssertTrue(table.contains("node 10.99.0.1"))
        XCTAssertTrue(table.contains("peers 2, sessions 1, datastore watch connected, last sync 3s ago"), table)
        let row = try XCTUnwrap(table.split(separator: "\n").first { $0.hasPrefix("10.99.0.2") })
        for part in ["192.0.2.2:1099", "established", "12s ago", "50 pkts/4.1 KiB", "51 pkts/4.2 KiB (3 dropped)", "direct"] {
            XCTAssertTrue(row.contains(part), "\(part) missing in: \(row)")
        }
    }

    func testStatusAgainstNothingSaysTheDaemonIsNotRunning() async throws {
        let server = try await start()
        let port = server.port
        server.stop()
        // The close completes asynchronously: poll until the port refuses connections.
        let expected = "quantum is not running: nothing listens on 127.0.0.1:\(port) (stats endpoint)"
        var message = ""
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline && message != expected {
            do {
                _ = try await StatusClient.fetch(host: "127.0.0.1", port: port)
            } catch let error as StatusError {
                message = error.description
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTAssertEqual(message, expected)
    }

    func testByteAndDurationUnits() {
        XCTAssertEqual(StatusTable.bytes(512), "512 B")
        XCTAssertEqual(StatusTable.bytes(1536), "1.5 KiB")
        XCTAssertEqual(StatusTable.bytes(5 << 30), "5.0 GiB")
        XCTAssertEqual(StatusTable.duration(45.9), "45s")
        XCTAssertEqual(StatusTable.duration(725), "12m5s")
        XCTAssertEqual(StatusTable.duration(7500), "2h5m")
    }
}
