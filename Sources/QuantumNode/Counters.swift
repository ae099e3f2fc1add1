import Synchronization

/// The names of one set of counters: their order is their storage and report order.
public protocol CounterName: RawRepresentable<Int>, CaseIterable, Sendable {
    /// The name used in reports (`drop_replay`).
    var label: String { get }
}

/// A set of counters written by a single thread and read by any: an increment is a
/// relaxed load and store, not a locked read-modify-write.
public final class CounterSet<Name: CounterName>: Sendable {
    /// Room for the largest set; a set may use fewer cells.
    private let cells = InlineArray<32, Atomic<UInt64>> { _ in Atomic(0) }

    public init() {
        precondition(Name.allCases.count <= cells.count, "more counters than cells")
    }

    /// Adds `amount` to a counter. Only the owning thread calls this.
    @inline(__always)
    public func add(_ name: Name, _ amount: UInt64 = 1) {
        cells[name.rawValue].store(cells[name.rawValue].load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    /// The current value of a counter.
    public func value(_ name: Name) -> UInt64 {
        cells[name.rawValue].load(ordering: .relaxed)
    }
}

/// What a data-path worker counts (one set per worker, written by that worker only).
public enum WorkerCounter: Int, CounterName {
    case txPackets, txBytes, rxPackets, rxBytes
    case dropNoRoute, dropNoSession, dropAuth, dropReplay, dropSpoofed, dropMalformed
    case dropSendFailed, dropTunWrite, dropHandshakeBacklog, keepalivesReceived
    case dropDestination, tunReadErrors
    /// Packets and bytes dropped on the way out (inner length) and in (datagram length),
    /// whatever the reason (each drop also counts under its reason).
    case txDroppedPackets, txDroppedBytes, rxDroppedPackets, rxDroppedBytes
    /// A compressed packet that does not decompress, or from a peer that did not negotiate compression.
    case dropCompression
    /// A handshake message refused by the worker before it reached the control thread:
    /// not the size its type requires, or a mac1 that does not verify.
    case dropHandshakeSize, dropHandshakeMAC1
    /// Relay envelopes this node forwarded to another node (`--relay`), and envelopes it
    /// refused: not a relay, unknown or unconfirmed source, spoofed source address, unknown
    /// destination, or an inner message that does not belong to the claimed source.
    case relayForwarded, relayRefused
    /// A handshake message without a valid mac2 for its source, dropped while the node was
    /// under load (and answered with a cookie reply: see `cookieRepliesSent`).
    case dropHandshakeMAC2
    /// Cookie replies sent by the worker instead of handing a handshake message on.
    case cookieRepliesSent
    /// Packets from a TUN queue with a virtio-net header that were refused: a header or
    /// super-packet that does not add up (see `TCPSegmentation.Refusal`).
    case dropOffloadMalformed
    /// Super-packets from the TUN queue cut into segments, and writes to it that joined
    /// several received TCP segments.
    case tunSuperPacketsSplit, tunCoalescedWrites
    /// Trains of segments the kernel refused to send with UDP GSO, sent as separate datagrams.
    case udpSegmentationFallbacks

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
        case .dropDestination: "drop_destination"
        case .tunReadErrors: "tun_read_errors"
        case .txDroppedPackets: "tx_dropped_packets"
        case .txDroppedBytes: "tx_dropped_bytes"
        case .rxDroppedPackets: "rx_dropped_packets"
        case .rxDroppedBytes: "rx_dropped_bytes"
        case .dropCompression: "drop_compression"
        case .dropHandshakeSize: "drop_handshake_size"
        case .dropHandshakeMAC1: "drop_handshake_mac1"
        case .relayForwarded: "relay_forwarded"
        case .relayRefused: "relay_refused"
        case .dropHandshakeMAC2: "drop_handshake_mac2"
        case .cookieRepliesSent: "cookie_replies_sent"
        case .dropOffloadMalformed: "drop_offload_malformed"
        case .tunSuperPacketsSplit: "tun_superpackets_split"
        case .tunCoalescedWrites: "tun_coalesced_writes"
        case .udpSegmentationFallbacks: "udp_segmentation_fallbacks"
        }
    }
}

/// What the control plane counts (written by the control thread only).
public enum ControlCounter: Int, CounterName {
    case handshakesInitiated, handshakesCompleted, handshakesRejected, handshakeTimeouts, keepalivesSent
    case stagedSent, stagedDropped
    /// Keepalives sent because nothing was sent to the peer for `--keepalive` (NAT bindings);
    /// the others (passive, session confirmation) are `keepalivesSent`.
    case persistentKeepalivesSent
    /// Keepalives sent straight to a relayed peer's endpoint to find out whether the direct path opened.
    case directProbesSent
    /// Peers whose path changed between direct and relayed (or from one relay to another).
    case pathChanges
    /// Cookie replies that answered a handshake message of ours, and those that did not
    /// (unknown index, or not authentic).
    case cookieRepliesAccepted, cookieRepliesRejected
    /// Initiations refused before any Diffie-Hellman because their source address exceeded
    /// its rate while the node was under load.
    case dropInitiationSourceRate
    /// Initiations refused because their peer already had one answered within
    /// `ControlPlane.peerInitiationInterval`.
    case dropInitiationPeerRate
    /// Mapping changes (additions, updates, removals) the control thread took in, one per address and turn.
    case mappingChangesApplied
    /// Forwarding tables built and handed to the workers.
    case tablesPublished

    public var label: String {
        switch self {
        case .handshakesInitiated: "handshakes_initiated"
        case .handshakesCompleted: "handshakes_completed"
        case .handshakesRejected: "handshakes_rejected"
        case .handshakeTimeouts: "handshake_timeouts"
        case .keepalivesSent: "keepalives_sent"
        case .stagedSent: "staged_sent"
        case .stagedDropped: "staged_dropped"
        case .persistentKeepalivesSent: "persistent_keepalives_sent"
        case .directProbesSent: "direct_probes_sent"
        case .pathChanges: "path_changes"
        case .cookieRepliesAccepted: "cookie_replies_accepted"
        case .cookieRepliesRejected: "cookie_replies_rejected"
        case .dropInitiationSourceRate: "drop_initiation_source_rate"
        case .dropInitiationPeerRate: "drop_initiation_peer_rate"
        case .mappingChangesApplied: "mapping_changes_applied"
        case .tablesPublished: "tables_published"
        }
    }
}

/// All counters of a node, summed over workers, in report order.
public struct CounterReport: Sendable, CustomStringConvertible {
    /// `(label, value)` pairs.
    public let entries: [(String, UInt64)]

    init(workers: [CounterSet<WorkerCounter>], control: CounterSet<ControlCounter>) {
        var entries: [(String, UInt64)] = WorkerCounter.allCases.map { name in
            (name.label, workers.reduce(0) { $0 &+ $1.value(name) })
        }
        entries += ControlCounter.allCases.map { ($0.label, control.value($0)) }
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

/// What is counted per peer, in each of the peer's cells (see `PeerTraffic`).
public enum PeerCounter: Int, CounterName {
    case txPackets, txBytes, txDroppedPackets, txDroppedBytes
    case rxPackets, rxBytes, rxDroppedPackets, rxDroppedBytes
    /// Drops whose reason belongs to one peer (each also counts as dropped above).
    case dropNoSession, dropAuth, dropReplay, dropSpoofed, dropDestination, dropMalformed

    public var label: String {
        switch self {
        case .txPackets: "tx_packets"
        case .txBytes: "tx_bytes"
        case .txDroppedPackets: "tx_dropped_packets"
        case .txDroppedBytes: "tx_dropped_bytes"
        case .rxPackets: "rx_packets"
        case .rxBytes: "rx_bytes"
        case .rxDroppedPackets: "rx_dropped_packets"
        case .rxDroppedBytes: "rx_dropped_bytes"
        case .dropNoSession: "drop_no_session"
        case .dropAuth: "drop_auth"
        case .dropReplay: "drop_replay"
        case .dropSpoofed: "drop_spoofed"
        case .dropDestination: "drop_destination"
        case .dropMalformed: "drop_malformed"
        }
    }
}

/// One peer's traffic counters: a fixed cell set per data-path worker plus one for the
/// control thread (staged packets). Each thread writes only its own cell (relaxed load and
/// store, no shared read-modify-write, no lock); the totals are summed when read. They belong
/// to the peer, so they survive its session changes.
///
/// The cells are one allocation, made by whichever thread counts first for the peer: a peer
/// of a large map that never exchanges a packet costs no counter memory (2.5 MB at 10,000
/// peers), and a peer that does pays once, off the steady state. The slots lie side by side,
/// each rounded up to whole 64-byte cache lines, so two workers counting for the same peer
/// never write the same line.
public final class PeerTraffic: @unchecked Sendable {
    // @unchecked: every cell is an atomic, and each slot is written by one thread only.

    /// Cells per slot: the counters, rounded up to a multiple of 8 (64 bytes).
    private static let slotStride = (PeerCounter.allCases.count + 7) / 8 * 8
    private typealias Cells = UnsafeMutablePointer<Atomic<UInt64>>
    /// Nil until the first count.
    private let cells = Atomic<Cells?>(nil)
    private let slots: Int

    /// - Parameter slots: worker count + 1 (the control thread's slot is the last).
    init(slots: Int) {
        self.slots = slots
    }

    deinit {
        guard let cells = cells.load(ordering: .acquiring) else { return }
        cells.deinitialize(count: slots * Self.slotStride)
        UnsafeMutableRawPointer(cells).deallocate()
    }

    /// Whether any thread has counted for this peer yet.
    var isAllocated: Bool { cells.load(ordering: .acquiring) != nil }

    /// Adds `amount` to `name` in `slot`'s cell; only the thread that owns the slot calls this.
    @inline(__always)
    func add(_ name: PeerCounter, _ amount: UInt64 = 1, slot: Int) {
        assert(slot < slots, "no such slot")
        let cell = (cells.load(ordering: .acquiring) ?? allocateCells()) + (slot * Self.slotStride + name.rawValue)
        cell.pointee.store(cell.pointee.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    /// The first count for this peer: publishes zeroed cells. When another thread published
    /// its own meanwhile, those are used and these freed.
    @inline(never)
    private func allocateCells() -> Cells {
        let count = slots * Self.slotStride
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Atomic<UInt64>>.stride, alignment: 64)
            .bindMemory(to: Atomic<UInt64>.self, capacity: count)
        for index in 0..<count { (fresh + index).initialize(to: Atomic(0)) }
        let (exchanged, published) = cells.compareExchange(expected: nil, desired: fresh, ordering: .acquiringAndReleasing)
        guard !exchanged, let published else { return fresh }
        fresh.deinitialize(count: count)
        UnsafeMutableRawPointer(fresh).deallocate()
        return published
    }

    /// `name` summed over every slot (0 before the first count).
    public func total(_ name: PeerCounter) -> UInt64 {
        guard let cells = cells.load(ordering: .acquiring) else { return 0 }
        return (0..<slots).reduce(0) { sum, slot in
            sum &+ (cells + (slot * Self.slotStride + name.rawValue)).pointee.load(ordering: .relaxed)
        }
    }
}
