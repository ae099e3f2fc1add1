import QuantumCore
import QuantumCrypto
import QuantumDevice

// Building a forwarding table outside the control plane: what the micro-benchmarks in
// Benchmarks/ (a package of their own, so they see only public API) need to time the
// data path's route lookup at a chosen number of peers.

extension ForwardingTable {
    /// A table that sends to `routes` (one per private address) and receives from nobody:
    /// no inbound sessions, no network prefix, gateway, floating IPs or relay.
    public convenience init(sendingTo routes: [Route]) {
        self.init(routes: Dictionary(routes.map { ($0.privateIP, $0) }, uniquingKeysWith: { _, last in last }),
                  inbound: [:])
    }
}

extension ForwardingTable.Route {
    /// A direct route to the peer `privateIP` at `endpoint`, sealed with `session` (nil before a
    /// handshake completed), for a node with `workers` data-path workers; no compression.
    public init(peer privateIP: IPv4Address, endpoint: UDPEndpoint?, session: Session?, workers: Int) {
        self.init(privateIP: privateIP, endpoint: endpoint, session: session,
                  signals: PeerSignals(slots: workers + 1), compression: false)
    }
}
