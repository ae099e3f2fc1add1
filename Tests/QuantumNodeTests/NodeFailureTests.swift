import Foundation
import Glibc
import Logging
import QuantumCore
import QuantumCrypto
import QuantumDevice
import Synchronization
import XCTest

@testable import QuantumNode

/// A node whose TUN queue breaks stops with one line naming the device and the errno.
final class NodeFailureTests: XCTestCase {
    /// Fatal errors reported by a node.
    private final class Reports: Sendable {
        let messages = Mutex<[String]>([])
        func add(_ message: String) { messages.withLock { $0.append(message) } }
        var all: [String] { messages.withLock { $0 } }
    }

    /// Runs a node on `queue` until it reports a fatal error (or `seconds` pass).
    private func runUntilFatal(queue: PacketQueue, seconds: Double = 5) throws -> (reports: [String], node: Node, elapsed: Double) {
        let socket = try UDPSocket(family: .ipv4, bindAddress: "127.0.0.1", port: 0)
        defer { socket.close() }
        let reports = Reports()
        var logger = Logger(label: "test-failure")
        logger.logLevel = .critical
        let settings = Node.Settings(privateIP: IPv4Address("10.99.5.1")!, mtu: 1420, useIPv4: true, useIPv6: false,
                                     deviceName: "quantum7", onFatalError: reports.add)
        let node = try Node(settings: settings, keyPair: .generate(), queues: [queue], sockets: [socket], logger: logger)
        let start = Date()
        node.start()
        defer { node.stop() }
        while reports.all.isEmpty && Date().timeIntervalSince(start) < seconds { usleep(10_000) }
        return (reports.all, node, Date().timeIntervalSince(start))
    }

    func testAQueueThatIsGoneIsFatalAtOnce() throws {
        let (reports, node, elapsed) = try runUntilFatal(queue: PacketQueue(fileDescriptor: -1))
        XCTAssertEqual(reports.count, 1)
        let message = try XCTUnwrap(reports.first)
        XCTAssertTrue(message.contains("quantum7") && message.contains("errno \(EBADF)"), message)
        XCTAssertEqual(node.failure, message)
        XCTAssertLessThan(elapsed, 0.5, "not after a second of retries")
    }

    func testReadsFailingForASecondAreFatal() throws {
        // A directory: every read fails with EISDIR, an error that is not "descriptor gone".
        let directory = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(directory, 0)
        defer { close(directory) }
        let (reports, node, elapsed) = try runUntilFatal(queue: PacketQueue(fileDescriptor: directory))
        let message = try XCTUnwrap(reports.first)
        XCTAssertTrue(message.contains("quantum7") && message.contains("errno \(EISDIR)"), message)
        XCTAssertGreaterThanOrEqual(elapsed, Double(Worker.tunFailureTime) / 1e9 * 0.9, "fatal only once the failures persisted")
        XCTAssertGreaterThan(node.counters()["tun_read_errors"] ?? 0, 1)
    }
}
