import QuantumDevice
import QuantumCrypto

// Timers, run every `tickInterval`: handshake retries and give-up, session expiry,
// rekeying, passive and persistent keepalives and the end of removed peers' grace.
extension ControlPlane {
    /// Returns true if the table must change.
    func tick(now: UInt64) -> Bool {
        var changed = expireRemovedPeers(now: now)
        probeForReflexiveEndpoint(now: now)
        changed = expireCertificates(now: now) || changed
        for peer in peers.values {
            retryHandshake(peer, now: now)
            changed = expireSessions(of: peer, now: now) || changed
            if let session = peer.current, let endpoint = peer.endpoint {
                keepAlive(peer, session: session, endpoint: endpoint, now: now)
                holdBindingOpen(peer, session: session, endpoint: endpoint, now: now)
                probeDirectPath(peer, session: session, endpoint: endpoint, now: now)
            }
        }
        return changed
    }

    /// Retires the peer's expired sessions; true if there were any. Looks at each slot in turn
    /// rather than through `Peer.sessions`, which builds an array: this runs for every peer at
    /// every tick (with 10,000 peers, that array was half the CPU time of an idle node).
    private func expireSessions(of peer: Peer, now: UInt64) -> Bool {
        var expired = false
        if let session = peer.current, session.isExpired(now: now) {
            peer.current = nil
            retire(session)
            expired = true
        }
        if let session = peer.previous, session.isExpired(now: now) {
            peer.previous = nil
            retire(session)
            expired = true
        }
        if let session = peer.next, session.isExpired(now: now) {
            peer.next = nil
            retire(session)
            expired = true
        }
        return expired
    }

    /// Retransmits an unanswered initiation every `rekeyTimeout`, and gives up after `rekeyAttemptTime`.
    private func retryHandshake(_ peer: Peer, now: UInt64) {
        guard let pending = peer.pending, elapsed(since: pending.sentAt, now: now) >= SessionLimits.rekeyTimeout else { return }
        guard elapsed(since: pending.firstAttemptAt, now: now) >= ControlPlane.rekeyAttemptTime else {
            _ = initiate(peer, now: now)
            return
        }
        owners[pending.localIndex] = nil
        peer.pending = nil
        peer.signals.handshakeWanted.store(false, ordering: .relaxed)
        counters.add(.stagedDropped, UInt64(peer.staged.count))
        peer.signals.traffic.add(.txDroppedPackets, UInt64(peer.staged.count), slot: controlSlot)
        peer.signals.traffic.add(.txDroppedBytes, UInt64(peer.staged.reduce(0) { $0 + $1.count }), slot: controlSlot)
        peer.staged.removeAll()
        peer.signals.staged.store(0, ordering: .relaxed)
        counters.add(.handshakeTimeouts)
        logger.debug("no handshake response from \(peer.mapping.privateIP); giving up until there is traffic")
    }

    /// Passive keepalives, and the handshakes started by what we receive (or fail to).
    private func keepAlive(_ peer: Peer, session: Session, endpoint: UDPEndpoint, now: UInt64) {
        let lastDataSent = peer.signals.lastDataSent.load(ordering: .relaxed)
        let lastReceived = peer.signals.lastReceived.load(ordering: .relaxed)
        let lastDataReceived = peer.signals.lastDataReceived.load(ordering: .relaxed)
        if session.isInitiator, peer.pending == nil, elapsed(since: session.createdAt, now: now) >= ControlPlane.receiveRekeyAge,
           lastReceived >= session.createdAt + ControlPlane.receiveRekeyAge {
            // We initiated this session and the peer still sends on it: replace it before
            // it expires, even if we send nothing ourselves (the responder never rekeys on time).
            logger.debug("session with \(peer.mapping.privateIP) is about to expire while in use; rekeying")
            _ = initiate(peer, now: now)
        }
        let lastSent = max(lastDataSent, peer.lastKeepaliveSent)
        if lastDataReceived > lastSent,
           elapsed(since: max(lastSent, session.createdAt), now: now) >= SessionLimits.keepaliveTimeout {
            // We received data and have sent nothing for the keepalive timeout: a keepalive
            // tells the peer we are alive (and holds NAT bindings open), every timeout while
            // a one-way flow lasts. Never in reply to a keepalive.
            sendKeepalive(peer, session: session, to: endpoint, worker: 0, now: now)
        } else if lastDataSent > lastReceived, peer.pending == nil,
                  elapsed(since: lastDataSent, now: now) < ControlPlane.newHandshakeTime,
                  elapsed(since: max(lastReceived, session.createdAt), now: now) >= ControlPlane.newHandshakeTime {
            // We send but hear nothing back (a live peer answers within the keepalive
            // timeout): the peer has probably lost the session, e.g. by restarting.
            logger.debug("no answer from \(peer.mapping.privateIP) on its session; starting a new handshake")
            _ = initiate(peer, now: now)
        }
    }

    /// Persistent keepalive (`--keepalive`): when nothing (data, keepalive or the handshake
    /// that made the session) was sent to the peer for `keepalive`, an empty transport packet
    /// holds the NAT bindings on the way open. Runs after the passive keepalive, so the two
    /// never both send in one tick.
    ///
    /// As in WireGuard, sending one on a session due for rekeying starts a new handshake (its
    /// `keep_key_fresh` runs after every transport message, keepalives included), so an idle
    /// link stays established while both ends live. It only rides on an established session,
    /// though: once the session expired (the peer stopped answering), no keepalive is sent
    /// and none starts a handshake — traffic does. Keepalives never count as data sent, so
    /// they never trigger the new handshake for data that goes unanswered.
    private func holdBindingOpen(_ peer: Peer, session: Session, endpoint: UDPEndpoint, now: UInt64) {
        guard keepalive > 0 else { return }
        let lastSent = max(peer.signals.lastDataSent.load(ordering: .relaxed), peer.lastKeepaliveSent, session.createdAt)
        guard elapsed(since: lastSent, now: now) >= keepalive else { return }
        sendKeepalive(peer, session: session, to: endpoint, worker: 0, now: now, counter: .persistentKeepalivesSent)
        if peer.pending == nil, session.shouldRekey(now: now) {
            logger.debug("session with \(peer.mapping.privateIP) is due for rekeying; starting a handshake with the keepalive")
            _ = initiate(peer, now: now)
        }
    }

    /// Time from `since` to `now`, zero when a worker stamped `since` after the control
    /// thread read `now` (the clocks are the same; the reads race).
    func elapsed(since: UInt64, now: UInt64) -> UInt64 {
        now > since ? now - since : 0
    }
}
