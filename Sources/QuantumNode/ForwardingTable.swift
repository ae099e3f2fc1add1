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
    /// Set when a worker opened a packet from the peer that came by another path (direct or
    /// through another relay) than the one the table sends on.
    let pathPending = Atomic<Bool>(false)
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
    public struct Route: Sendable {
        let privateIP: IPv4Address
        let endpoint: UDPEndpoint?
        /// The session to seal with; nil until a handshake completed.
        let session: Session?
        let signals: PeerSignals
        /// Both ends advertise the compression plugin: packets are sent compressed when that shrinks them.
        let compression: Bool
        /// The relay's endpoint when the peer is reached through a relay: messages go there
        /// inside a relay envelope (nil: straight to `endpoint`).
        var relayEndpoint: UDPEndpoint? = nil
    }

    /// The inner source addresses a peer may send from besides its own private address,
    /// decided by the control thread when it builds the table.
    struct InnerSources: Sendable {
        /// The floating IPs the peer holds.
        var floating: Set<IPv4Address> = []
        /// Whether the peer is this node's gateway: sources outside the network come from it.
        var outsideNetwork = false
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
        /// What the peer may send from besides `privateIP`.
        var sources = InnerSources()
        /// The endpoint of the relay the peer is reached through; nil when direct.
        var relayEndpoint: UDPEndpoint? = nil
    }

    let routes: [IPv4Address: Route]
    let inbound: [UInt32: Inbound]
    /// The private network: what lies outside it goes to (or comes from) a gateway.
    let network: IPv4Prefix?
    /// Floating IPs this node holds: accepted as inner destinations besides its own address.
    let localFloating: Set<IPv4Address>
    /// Whether this node serves as gateway: inner destinations outside `network` are accepted.
    let servesGateway: Bool
    /// Where packets for destinations outside `network` go (this node uses a gateway).
    let gatewayRoute: Route?
    /// Whether this node forwards relay envelopes between its peers (`--relay`).
    let offersRelay: Bool

    init(routes: [IPv4Address: Route], inbound: [UInt32: Inbound], network: IPv4Prefix? = nil,
         localFloating: Set<IPv4Address> = [], servesGateway: Bool = false, gatewayRoute: Route? = nil,
         offersRelay: Bool = false) {
        self.offersRelay = offersRelay
        self.routes = routes
        self.inbound = inbound
        self.network = network
        self.localFloating = localFloating
        self.servesGateway = servesGateway
        self.gatewayRoute = gatewayRoute
    }

    /// The route for a packet to `destination`: its peer (or the holder of that floating IP),
    /// else the gateway when the destination is outside the network. O(1), allocation-free.
    @inline(__always)
    public func route(to destination: IPv4Address) -> Route? {
        if let route = routes[destination] { return route }
        guard let gatewayRoute, let network, !network.contains(destination) else { return nil }
        return gatewayRoute
    }

    /// Whether a received packet for `destination` is for this node (`localIP` is its own
    /// address): that address, a floating IP it holds, or anything outside the network
    /// when it serves as gateway.
    @inline(__always)
    func accepts(destination: IPv4Address, localIP: IPv4Address) -> Bool {
        if destination == localIP || localFloating.contains(destination) { return true }
        guard servesGateway, let network else { return false }
        return !network.contains(destination)
    }

    /// Whether `inbound`'s peer may send a packet from `source`: its own address, a
    /// floating IP it holds, or (from this node's gateway) an address outside the network.
    @inline(__always)
    func accepts(source: IPv4Address, from inbound: Inbound) -> Bool {
        if source == inbound.privateIP || inbound.sources.floating.contains(source) { return true }
        guard inbound.sources.outsideNetwork, let network else { return false }
        return !network.contains(source)
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
