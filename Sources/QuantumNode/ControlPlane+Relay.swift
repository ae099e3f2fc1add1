import QuantumCore
import QuantumCrypto
import QuantumDevice

extension ControlEvent {
    /// Whether the event carries a received handshake message, direct or relayed (bounded
    /// by `ControlPlane.handshakeBacklog`).
    var carriesHandshake: Bool {
        switch self {
        case .handshake, .relayedHandshake: true
        default: false
        }
    }
}

/// A handshake message that came inside a relay envelope: who sealed it (as the relay
/// vouched) and the relay it came through.
struct RelayedArrival {
    /// The peer the envelope names as source.
    let origin: IPv4Address
    /// The private address of the relay that forwarded it.
    let relay: IPv4Address
}

// Relayed paths (`--relay`): when handshakes with a peer go unanswered for `pathTryTime`,
// the next attempts go through a relay node this node has a session with (and back the
// other way after as long again); a session made through a relay carries data through it;
// while relayed, a keepalive goes straight to the peer every `directProbeInterval`, and the
// first packet the peer receives straight (or sends straight) brings both ends back to the
// direct path. A node that receives a peer's packets through a relay answers through it.
//
// The peer endpoint code (+Handshakes) calls in at four places only: `choosePath` when it
// initiates, `arrivedAsClaimed` and `takePath` when a handshake arrives, and `datagram`
// for every message it sends to a peer.
extension ControlPlane {
    /// How long handshakes on one path go unanswered before the next attempt takes the
    /// other one: two initiations (`SessionLimits.rekeyTimeout` apart), so a dropped
    /// initiation alone never moves a peer off its direct path.
    static let pathTryTime: UInt64 = 2 * SessionLimits.rekeyTimeout
    /// How often a relayed peer's direct path is probed: well inside the 25 s NAT bindings
    /// live on, and the bound on how long a path that opened stays unused.
    static let directProbeInterval: UInt64 = 20 * SessionLimits.nanosecondsPerSecond

    /// The datagram carrying `bytes` to `peer`: inside a relay envelope to the relay's
    /// endpoint when the peer is reached through one (and `direct` is false), else to `endpoint`.
    func datagram(_ bytes: [UInt8], to peer: Peer, endpoint: UDPEndpoint, worker: Int,
                  direct: Bool = false) -> OutgoingDatagram {
        guard !direct, let hop = relayEndpoint(of: peer) else {
            return .init(bytes: bytes, endpoint: endpoint, worker: worker)
        }
        return .init(bytes: RelayEnvelope.wrap(bytes, destination: peer.mapping.privateIP, source: localIP),
                     endpoint: hop, worker: worker)
    }

    /// The endpoint of the relay `peer` is reached through, nil when direct.
    func relayEndpoint(of peer: Peer) -> UDPEndpoint? {
        guard let relay = peer.relay, let hop = peers[relay], hop.relay == nil else { return nil }
        return hop.endpoint
    }

    /// Picks the path of the next initiation to `peer` (before `initiate` sends it): a new
    /// handshake keeps the current path; one unanswered for `pathTryTime` switches from
    /// direct to a relay (when there is one with a session) or from the relay back to direct.
    func choosePath(for peer: Peer, now: UInt64) {
        guard peer.pending != nil else {
            peer.pathTriedAt = now
            return
        }
        guard elapsed(since: peer.pathTriedAt, now: now) >= ControlPlane.pathTryTime else { return }
        let next: IPv4Address?
        if peer.relay == nil {
            guard let relay = relayCandidate(for: peer, now: now) else { return }
            next = relay
        } else {
            next = nil
        }
        let tried = peer.relay.map { "through relay \($0)" } ?? "directly"
        let seconds = ControlPlane.pathTryTime / SessionLimits.nanosecondsPerSecond
        logger.info("no handshake answer from \(peer.mapping.privateIP) \(tried) for \(seconds) s; trying \(next.map { "through relay \($0)" } ?? "directly")")
        setPath(of: peer, relay: next, now: now)
        peer.pathTriedAt = now
    }

    /// The relay to reach `peer` through: the lowest-addressed peer that offers itself as
    /// relay, is reached directly and has a session with this node. Without one, starts a
    /// handshake with a relay, so that a later attempt finds it.
    private func relayCandidate(for peer: Peer, now: UInt64) -> IPv4Address? {
        let relays = peers.values.filter { $0 !== peer && $0.mapping.relay && $0.relay == nil && $0.endpoint != nil }
            .sorted { $0.mapping.privateIP < $1.mapping.privateIP }
        if let ready = relays.first(where: { $0.current != nil }) { return ready.mapping.privateIP }
        if let relay = relays.first(where: { $0.pending == nil }) { _ = initiate(relay, now: now) }
        return nil
    }

    /// Whether a handshake message that came through a relay was sealed by the peer the
    /// relay named (a direct one always is: nothing to check).
    func arrivedAsClaimed(_ peer: Peer, _ relayed: RelayedArrival?) -> Bool {
        guard let relayed, relayed.origin != peer.mapping.privateIP else { return true }
        counters.add(.handshakesRejected)
        // Debug, not warning: the relay and the envelope are network input, and may repeat.
        logger.debug("handshake of \(peer.mapping.privateIP) came through relay \(relayed.relay) in an envelope from \(relayed.origin); ignored")
        return false
    }

    /// Records the path a handshake message from `peer` came by: straight from `source`
    /// (its endpoint from now on), or through a relay, which answers and data then take.
    func takePath(of peer: Peer, from source: UDPEndpoint, relayed: RelayedArrival?, now: UInt64) {
        if relayed == nil { peer.endpoint = source }
        setPath(of: peer, relay: relayed?.relay, now: now)
    }

    /// Sends `peer`'s traffic through `relay` (nil: directly) from now on.
    private func setPath(of peer: Peer, relay: IPv4Address?, now: UInt64) {
        guard peer.relay != relay else { return }
        logger.info("path to \(peer.mapping.privateIP): \(relay.map { "relayed via \($0)" } ?? "direct")")
        peer.relay = relay
        peer.lastDirectProbe = now
        counters.add(.pathChanges)
        pathsChanged = true
    }

    /// Whether some peer's path changed since the last table (and clears the note).
    func takePathChanges() -> Bool {
        defer { pathsChanged = false }
        return pathsChanged
    }

    /// Answers or completes a handshake that came in an envelope from `origin` through
    /// the relay at `via`, which must be a peer offering itself as relay.
    func handleRelayedHandshake(_ bytes: [UInt8], origin: IPv4Address, via: UDPEndpoint, worker: Int, now: UInt64) -> Bool {
        guard let relay = relayPeer(at: via) else {
            counters.add(.handshakesRejected)
            logger.debug("relayed handshake from \(via), which is no relay of this network; ignored")
            return false
        }
        // The answer goes back through the relay, which forwards it only from a peer it has a session with.
        if relay.current == nil && relay.pending == nil { _ = initiate(relay, now: now) }
        let relayed = RelayedArrival(origin: origin, relay: relay.mapping.privateIP)
        return bytes.withUnsafeBytes { message in
            message[0] == MessageType.initiation.rawValue
                ? respond(to: message, from: via, worker: worker, now: now, relayed: relayed)
                : complete(with: message, from: via, worker: worker, now: now, relayed: relayed)
        }
    }

    /// A worker saw the peer of session `index` arrive by another path than the table sends
    /// on: through the relay at `via`, or straight (`via` nil). Data follows the peer's
    /// choice; on the way back to direct, a keepalive tells the peer at once.
    func changePath(ofSession index: UInt32, via: UDPEndpoint?, _ signals: PeerSignals, now: UInt64) -> Bool {
        signals.pathPending.store(false, ordering: .relaxed)
        guard let address = owners[index], let peer = peers[address], peer.signals === signals else { return false }
        if let via {
            guard let relay = relayPeer(at: via), relay !== peer, peer.relay != relay.mapping.privateIP else {
                return false
            }
            setPath(of: peer, relay: relay.mapping.privateIP, now: now)
        } else {
            guard peer.relay != nil else { return false }
            setPath(of: peer, relay: nil, now: now)
            if let session = peer.current, let endpoint = peer.endpoint {
                sendKeepalive(peer, session: session, to: endpoint, worker: 0, now: now)
            }
        }
        return takePathChanges()
    }

    /// While `peer` is relayed, sends a keepalive straight to its endpoint every
    /// `directProbeInterval`: if it arrives, the peer comes back to the direct path and says so.
    func probeDirectPath(_ peer: Peer, session: Session, endpoint: UDPEndpoint, now: UInt64) {
        guard peer.relay != nil,
              elapsed(since: peer.lastDirectProbe, now: now) >= ControlPlane.directProbeInterval else { return }
        peer.lastDirectProbe = now
        sendKeepalive(peer, session: session, to: endpoint, worker: 0, now: now, counter: .directProbesSent, direct: true)
    }

    /// The peer at `endpoint` that offers itself as relay.
    private func relayPeer(at endpoint: UDPEndpoint) -> Peer? {
        peers.values.first { $0.endpoint == endpoint && $0.mapping.relay }
    }
}
