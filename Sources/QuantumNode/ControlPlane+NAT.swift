import QuantumCore
import QuantumDevice

// NAT traversal: where to send a peer's initiation (every candidate endpoint), learning this
// node's reflexive endpoint from handshake responses (asking a few peers when nobody has
// said yet), and the simultaneous open between two nodes behind NAT.
extension ControlPlane {
    /// The endpoints an initiation to `peer` goes to: where it was last heard from, its
    /// configured endpoint and its reflexive candidates, without duplicates. The response
    /// comes from one of them, and `complete` makes that one the peer's endpoint.
    func endpointsToTry(_ peer: Peer) -> [UDPEndpoint] {
        var endpoints: [UDPEndpoint] = []
        let reflexive = useIPv4 ? peer.mapping.candidates.map { UDPEndpoint($0, family: transport.family) } : []
        for endpoint in [peer.endpoint, endpoint(for: peer.mapping)].compactMap({ $0 }) + reflexive
        where !endpoints.contains(endpoint) {
            endpoints.append(endpoint)
        }
        return endpoints
    }

    /// Notes where `peer` saw this node's initiation come from (an authenticated response).
    func learnReflexiveEndpoint(_ observed: [UInt8], from peer: Peer, now: UInt64) {
        guard let endpoint = IPv4Endpoint(observedBytes: observed),
              traversal.record(endpoint, from: peer.mapping.privateIP) else { return }
        reflexiveEndpointsChanged(now: now)
    }

    /// This node's own mapping arrived: its configured endpoint is no candidate.
    func noteOwnMapping(_ mapping: Mapping?, now: UInt64) {
        let configured = mapping.flatMap { mapping in mapping.ipv4.map { IPv4Endpoint($0, port: mapping.port) } }
        if traversal.configure(configured) { reflexiveEndpointsChanged(now: now) }
    }

    /// A peer left: its report goes with it.
    func forgetReflexiveReport(of address: IPv4Address, now: UInt64) {
        if traversal.forget(address) { reflexiveEndpointsChanged(now: now) }
    }

    /// Publishes the new candidates for the datastore side, and opens the way to every peer
    /// behind NAT that has no session yet (its NAT now knows where to expect us).
    private func reflexiveEndpointsChanged(now: UInt64) {
        let candidates = traversal.candidates
        reflexiveCandidates.set(candidates)
        logger.info("reflexive endpoints: \(candidates.isEmpty ? "none (peers see the configured endpoint)" : candidates.map(\.description).joined(separator: ", "))")
        for peer in peers.values { openPath(to: peer, now: now) }
    }

    /// Simultaneous open: when this node and `peer` are both behind NAT and have no session,
    /// an initiation to each of the peer's endpoints makes this node's NAT let the peer's
    /// initiations in. The peer does the same when it sees our candidates (or learns its
    /// own), and the retries (`rekeyTimeout`, for `rekeyAttemptTime`) cross within seconds.
    func openPath(to peer: Peer, now: UInt64) {
        guard peer.current == nil, !peer.mapping.candidates.isEmpty, !traversal.candidates.isEmpty else { return }
        logger.debug("opening a path through NAT to \(peer.mapping.privateIP)")
        _ = initiate(peer, now: now, evenIfInFlight: true)
    }

    /// Until a peer has said where it sees this node, handshakes with up to `probeLimit` peers
    /// at a time, each at most once, those that publish no reflexive endpoint (likely not
    /// behind NAT) first. Peers with a session are not asked (a node that took over its
    /// predecessor's sessions learns on its next handshake). Runs every tick; nothing is sent
    /// once a report arrived.
    func probeForReflexiveEndpoint(now: UInt64) {
        guard probesReflexiveEndpoint, !traversal.hasLearned else { return }
        let asking = traversal.probed.filter { peers[$0]?.pending != nil }.count
        guard asking < NATTraversal.probeLimit else { return }
        let fresh = peers.values.filter {
            !traversal.probed.contains($0.mapping.privateIP) && $0.pending == nil && $0.current == nil
        }
            .sorted { a, b in
                (a.mapping.candidates.isEmpty ? 0 : 1, a.mapping.privateIP) < (b.mapping.candidates.isEmpty ? 0 : 1, b.mapping.privateIP)
            }
        for peer in fresh.prefix(NATTraversal.probeLimit - asking) {
            traversal.probed.insert(peer.mapping.privateIP)
            logger.debug("asking \(peer.mapping.privateIP) where it sees this node")
            _ = initiate(peer, now: now)
        }
    }
}
