import QuantumCore
import QuantumCrypto
import QuantumDevice
import Synchronization

/// Per-peer flags and timestamps shared between the workers and the control thread.
///
/// Workers only set flags (with a compare-and-exchange, so a burst of packets
/// signals the control thread once) and store timestamps; the control thread
/// clears flags when it has acted.
public final class PeerSignals: Sendable {
    /// Set when a worker needs a (new) session with this peer.
    let handshakeWanted = Atomic<Bool>(false)
    /// Packets handed to the control thread to send once a session exists (approximate:
    /// workers add, the control thread resets it when it sends or drops them).
    let staged = Atomic<Int>(0)
    /// Set when a worker saw an authenticated packet from an address other than the known endpoint.
    let roamPending = Atomic<Bool>(false)
    /// Set when a worker opened a packet with the peer's not-yet-confirmed session.
    let confirmPending = Atomic<Bool>(false)
    /// Monotonic time of the last data packet (not keepalive) a worker sent to the peer.
    let lastDataSent = Atomic<UInt64>(0)
    /// Monotonic time of the last authenticated packet, keepalives included, from the peer.
    let lastReceived = Atomic<UInt64>(0)
    /// Monotonic time of the last authenticated data packet from the peer.
    let lastDataReceived = Atomic<UInt64>(0)
    /// The peer's packet and byte counters.
    let traffic: PeerTraffic

    /// - Parameter slots: AEAD slots of the peer's sessions (workers + the control thread).
    init(slots: Int) {
        traffic = PeerTraffic(slots: slots)
    }

    /// Atomically sets `flag`; true if this call changed it (the caller should notify).
    @inline(__always)
    static func raise(_ flag: borrowing Atomic<Bool>) -> Bool {
        flag.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
    }
}

/// An immutable snapshot of everything the data path looks up, rebuilt by the
/// control thread whenever a mapping, session or endpoint changes, and swapped in
/// whole: workers never wait for it and never see half an update.
public final class ForwardingTable: Sendable {
    /// Where packets for one private address go.
    struct Route: Sendable {
        let privateIP: IPv4Address
        let endpoint: UDPEndpoint?
        /// The session to seal with; nil until a handshake completed.
        let session: Session?
        let signals: PeerSignals
        /// Both ends advertise the compression plugin: packets are sent compressed when that shrinks them.
        let compression: Bool
    }

    /// What a received receiver index means.
    struct Inbound: Sendable {
        let session: Session
        let privateIP: IPv4Address
        let endpoint: UDPEndpoint?
        let signals: PeerSignals
        /// False for a responder's session the initiator has not yet used.
        let confirmed: Bool
        /// Both ends advertise the compression plugin: compressed packets are accepted.
        let compression: Bool
    }

    let routes: [IPv4Address: Route]
    let inbound: [UInt32: Inbound]

    init(routes: [IPv4Address: Route], inbound: [UInt32: Inbound]) {
        self.routes = routes
        self.inbound = inbound
    }

    static let empty = ForwardingTable(routes: [:], inbound: [:])
}

/// Holds the current `ForwardingTable`. Workers compare the generation (one
/// relaxed atomic load per batch) and take the lock only after a change.
final class ForwardingTableHolder: Sendable {
    private let current = Mutex<ForwardingTable>(.empty)
    let generation = Atomic<UInt64>(0)

    /// Publishes a new table (control thread).
    func publish(_ table: ForwardingTable) {
        current.withLock { $0 = table }
        generation.add(1, ordering: .releasing)
    }

    /// The current table and its generation.
    func load() -> (ForwardingTable, UInt64) {
        let generation = generation.load(ordering: .acquiring)
        return (current.withLock { $0 }, generation)
    }
}
