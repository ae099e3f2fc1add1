import Synchronization

/// The data-path counters of one worker: written only by that worker's thread,
/// read by anyone (the API, a SIGUSR1 dump). Single writer, so an increment is a
/// relaxed load and store, not a locked read-modify-write.
public final class WorkerCounters: Sendable {
    /// Every counter a worker keeps, in the order they are reported.
    public enum Name: Int, CaseIterable, Sendable {
        case txPackets, txBytes, rxPackets, rxBytes
        case dropNoRoute, dropNoSession, dropAuth, dropReplay, dropSpoofed, dropMalformed
        case dropSendFailed, dropTunWrite, dropHandshakeBacklog, keepalivesReceived

        /// The name used in reports (`drop_replay`).
        public var label: String {
            switch self {
            case .txPackets: "tx_packets"
            case .txBytes: "tx_bytes"
            case .rxPackets: "rx_packets"
            case .rxBytes: "rx_bytes"
            case .dropNoRoute: "drop_no_route"
            case .dropNoSession: "drop_no_session"
            case .dropAuth: "drop_auth"
            case .dropReplay: "drop_replay"
            case .dropSpoofed: "drop_spoofed"
            case .dropMalformed: "drop_malformed"
            case .dropSendFailed: "drop_send_failed"
            case .dropTunWrite: "drop_tun_write"
            case .dropHandshakeBacklog: "drop_handshake_backlog"
            case .keepalivesReceived: "keepalives_received"
            }
        }
    }

    private let values = InlineArray<14, Atomic<UInt64>> { _ in Atomic(0) }

    public init() {
        precondition(Name.allCases.count == values.count, "one cell per counter")
    }

    /// Adds `amount` to a counter. Only the owning worker calls this.
    @inline(__always)
    public func add(_ name: Name, _ amount: UInt64 = 1) {
        values[name.rawValue].store(values[name.rawValue].load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    /// The current value of a counter.
    public func value(_ name: Name) -> UInt64 {
        values[name.rawValue].load(ordering: .relaxed)
    }
}

/// Counters of the control plane (handshakes), written by the control thread only.
public final class ControlCounters: Sendable {
    /// Every control-plane counter, in report order.
    public enum Name: Int, CaseIterable, Sendable {
        case handshakesInitiated, handshakesCompleted, handshakesRejected, handshakeTimeouts, keepalivesSent

        /// The name used in reports.
        public var label: String {
            switch self {
            case .handshakesInitiated: "handshakes_initiated"
            case .handshakesCompleted: "handshakes_completed"
            case .handshakesRejected: "handshakes_rejected"
            case .handshakeTimeouts: "handshake_timeouts"
            case .keepalivesSent: "keepalives_sent"
            }
        }
    }

    private let values = InlineArray<5, Atomic<UInt64>> { _ in Atomic(0) }

    public init() {
        precondition(Name.allCases.count == values.count, "one cell per counter")
    }

    /// Adds one to a counter. Only the control thread calls this.
    public func increment(_ name: Name) {
        values[name.rawValue].store(values[name.rawValue].load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    /// The current value of a counter.
    public func value(_ name: Name) -> UInt64 {
        values[name.rawValue].load(ordering: .relaxed)
    }
}

/// All counters of a node, summed over workers, in report order.
public struct CounterReport: Sendable, CustomStringConvertible {
    /// `(label, value)` pairs.
    public let entries: [(String, UInt64)]

    init(workers: [WorkerCounters], control: ControlCounters) {
        var entries: [(String, UInt64)] = WorkerCounters.Name.allCases.map { name in
            (name.label, workers.reduce(0) { $0 &+ $1.value(name) })
        }
        entries += ControlCounters.Name.allCases.map { ($0.label, control.value($0)) }
        self.entries = entries
    }

    /// The value of the counter with `label`, or nil if there is none.
    public subscript(label: String) -> UInt64? {
        entries.first { $0.0 == label }?.1
    }

    /// `name=value` pairs separated by spaces.
    public var description: String {
        entries.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
    }
}
