import Foundation
import Logging
import QuantumCore
import QuantumDatastore
import Synchronization
import XCTest

/// Collects every log line so tests can check what was warned about.
final class LogCapture: Sendable {
    private let lines = Mutex<[(level: Logger.Level, text: String)]>([])

    func append(_ level: Logger.Level, _ text: String) {
        lines.withLock { $0.append((level, text)) }
    }

    /// Lines at `level` containing every one of `parts`.
    func matching(_ level: Logger.Level, _ parts: String...) -> [String] {
        lines.withLock { lines in
            lines.filter { $0.level == level && parts.allSatisfy($0.text.contains) }.map(\.text)
        }
    }

    var logger: Logger {
        var logger = Logger(label: "test") { _ in CapturingHandler(capture: self) }
        logger.logLevel = .debug
        return logger
    }
}

/// A log handler that renders message and metadata into one line for ``LogCapture``.
struct CapturingHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let rendered = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        capture.append(event.level, "\(event.message) \(rendered)")
    }
}

/// A thread-safe box for values produced by background tasks.
final class Box<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func set(_ new: Value) { value.withLock { $0 = new } }
    func get() -> Value { value.withLock { $0 } }
    func update(_ body: (inout Value) -> Void) { value.withLock { body(&$0) } }
}

/// Polls `condition` until it holds or `timeout` passes; fails the test on timeout.
func eventually(_ what: String, timeout: Duration = .seconds(5), file: StaticString = #filePath, line: UInt = #line,
                _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try? await Task.sleep(for: .milliseconds(20))
    }
    XCTFail("timed out waiting for: \(what)", file: file, line: line)
}

enum Fixtures {
    static func address(_ text: String) -> IPv4Address { IPv4Address(text)! }
    static func prefix(_ text: String) -> IPv4Prefix { try! IPv4Prefix(parsing: text) }

    /// 10.99.0.0/24 with static .0–.15 and floating .16–.31: DHCP starts at 10.99.0.32.
    static let config = try! NetworkConfig(network: prefix("10.99.0.0/24"), staticRange: prefix("10.99.0.0/28"),
                                           floatingRange: prefix("10.99.0.16/28"), leaseTimeSeconds: 60)

    static func machineID(_ n: Int) -> String { String(format: "%032x", n) }

    static func mapping(machine n: Int) -> (IPv4Address) -> Mapping {
        { address in
            Mapping(machineID: machineID(n), privateIP: address, ipv4: IPv4Address("192.0.2.\(n % 250 + 1)"),
                    ipv6: nil, port: 1099, publicKey: [UInt8](repeating: UInt8(n % 256), count: 32))
        }
    }
}
