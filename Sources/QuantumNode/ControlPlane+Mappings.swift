import QuantumCrypto
import QuantumCore
import QuantumDatastore
import QuantumDevice

/// One mapping the control plane knows of, with what decides who owns its public key.
struct Claim {
    var mapping: Mapping
    /// The store revision at which the mapping was created: the later one owns a shared key.
    var createRevision: Int64
    /// When the datastore stopped reporting the mapping (its peer is in its grace period).
    var removedAt: UInt64?
    /// Whether the conflict that makes this mapping lose its key was already logged.
    var conflictLogged = false
}

// Mapping changes, applied one at a time in O(1) amortized: `known` holds every
// mapping, `claimants` the addresses per public key, and only the owner of a key
// (the mapping created last) has a `Peer`, so a session can never be bound to an
// address that merely copied another node's key.
extension ControlPlane {
    /// Applies one datastore change; returns true if the peer set or a peer's endpoint changed.
    func applyMapping(_ update: MappingUpdate, now: UInt64) -> Bool {
        let address = update.address
        guard address != localIP else {
            noteOwnMapping(update.mapping, now: now)
            return false
        }
        guard let mapping = update.mapping else { return removeMapping(at: address, now: now) }
        guard mapping.publicKey != localPublicKey else {
            logger.warning("mapping \(address) carries this node's own public key; ignored")
            return removeMapping(at: address, now: now)
        }
        let old = known[address]
        known[address] = Claim(mapping: mapping, createRevision: update.createRevision,
                               conflictLogged: old?.mapping.publicKey == mapping.publicKey && old?.conflictLogged == true)
        if graced.remove(address) != nil { logger.info("peer \(address) is back in the datastore") }
        var changed = false
        if let old, old.mapping.publicKey != mapping.publicKey {
            if peers[address] != nil { logger.info("peer \(address) has a new public key; its sessions are dropped") }
            changed = withdrawClaim(of: address, on: old.mapping.publicKey)
            changed = settleOwner(of: old.mapping.publicKey) || changed
        }
        if old?.mapping.publicKey != mapping.publicKey {
            claimants[mapping.publicKey, default: []].append(address)
        }
        changed = settleOwner(of: mapping.publicKey) || changed
        if old?.mapping.candidates != mapping.candidates, let peer = peers[address] { openPath(to: peer, now: now) }
        return changed
    }

    /// The peer that owns `publicKey`, if any.
    func peer(owning publicKey: [UInt8]) -> Peer? {
        guard let addresses = claimants[publicKey], let owner = owner(among: addresses) else { return nil }
        return peers[owner]
    }

    /// A mapping the datastore no longer reports: its peer keeps route and sessions
    /// for the removal grace, anything else goes at once.
    private func removeMapping(at address: IPv4Address, now: UInt64) -> Bool {
        guard var claim = known[address], claim.removedAt == nil else { return false }
        guard peers[address] != nil, removalGrace > 0 else { return forget(address, now: now) }
        claim.removedAt = now
        known[address] = claim
        graced.insert(address)
        logger.info("peer \(address) left the datastore; kept for \(removalGrace / 1_000_000_000) s in case it returns")
        return false
    }

    /// Drops the peers whose grace period is over; returns true if any went.
    func expireRemovedPeers(now: UInt64) -> Bool {
        guard !graced.isEmpty else { return false }
        var changed = false
        for address in graced {
            guard let removedAt = known[address]?.removedAt, elapsed(since: removedAt, now: now) >= removalGrace else { continue }
            graced.remove(address)
            logger.info("peer \(address) removed")
            changed = forget(address, now: now) || changed
        }
        return changed
    }

    /// Forgets a mapping entirely; another mapping with the same key may become its owner.
    func forget(_ address: IPv4Address, now: UInt64) -> Bool {
        guard let claim = known.removeValue(forKey: address) else { return false }
        graced.remove(address)
        forgetReflexiveReport(of: address, now: now)
        let dropped = withdrawClaim(of: address, on: claim.mapping.publicKey)
        return settleOwner(of: claim.mapping.publicKey) || dropped
    }

    /// Takes `address` off the claimants of `publicKey`, dropping its peer; true if there was one.
    private func withdrawClaim(of address: IPv4Address, on publicKey: [UInt8]) -> Bool {
        claimants[publicKey]?.removeAll { $0 == address }
        if claimants[publicKey]?.isEmpty == true { claimants[publicKey] = nil }
        guard let peer = peers.removeValue(forKey: address) else { return false }
        dropSessions(of: peer)
        return true
    }

    /// The claimant created last (ties, which the store never produces, go to the higher address).
    private func owner(among addresses: [IPv4Address]) -> IPv4Address? {
        addresses.max { a, b in
            let (ra, rb) = (known[a]?.createRevision ?? 0, known[b]?.createRevision ?? 0)
            return ra != rb ? ra < rb : a.value < b.value
        }
    }

    /// Gives `publicKey`'s owner a peer (created or updated) and takes it from every
    /// other claimant. Returns true if a peer was added, dropped or changed.
    private func settleOwner(of publicKey: [UInt8]) -> Bool {
        guard let addresses = claimants[publicKey], let owner = owner(among: addresses) else { return false }
        var changed = false
        for address in addresses where address != owner {
            guard var claim = known[address] else { continue }
            if let peer = peers.removeValue(forKey: address) {
                dropSessions(of: peer)
                changed = true
            }
            if claim.removedAt != nil {
                // A removed mapping that lost its key has nothing left to wait for.
                known[address] = nil
                graced.remove(address)
                claimants[publicKey]?.removeAll { $0 == address }
                continue
            }
            if !claim.conflictLogged {
                logger.warning("mappings \(owner) and \(address) carry the same public key; \(owner) (created later) owns it, \(address) is ignored")
                claim.conflictLogged = true
                known[address] = claim
            }
        }
        guard var claim = known[owner] else { return changed }
        claim.conflictLogged = false
        known[owner] = claim
        return updatePeer(at: owner, to: claim) || changed
    }

    /// Creates the owner's peer or brings it up to date with its mapping.
    private func updatePeer(at address: IPv4Address, to claim: Claim) -> Bool {
        guard let peer = peers[address] else {
            let endpoint = endpoint(for: claim.mapping)
            peers[address] = Peer(mapping: claim.mapping, endpoint: endpoint, slots: workerCount + 1)
            logger.info("peer \(address) added at \(endpoint.map(\.description) ?? "no reachable endpoint")")
            return true
        }
        // Same key (a new key withdrew the old claim and its peer): sessions stay.
        guard peer.mapping != claim.mapping else { return false }
        let configured = endpoint(for: claim.mapping)
        // With a session, the endpoint is where authenticated packets came from (perhaps a
        // reflexive endpoint): only a new configured endpoint replaces it (the node moved).
        if peer.current == nil || configured != endpoint(for: peer.mapping) { peer.endpoint = configured }
        peer.mapping = claim.mapping
        logger.info("peer \(address) mapping changed: endpoint \(peer.endpoint.map(\.description) ?? "none")")
        return true
    }

    /// The endpoint to use for a mapping: IPv4 when both sides may use it, else IPv6.
    func endpoint(for mapping: Mapping) -> UDPEndpoint? {
        let family = transport.family
        if useIPv4, let v4 = mapping.ipv4 { return UDPEndpoint(v4, port: mapping.port, family: family) }
        if useIPv6, family == .ipv6, let v6 = mapping.ipv6 { return UDPEndpoint(v6, port: mapping.port) }
        return nil
    }

    func dropSessions(of peer: Peer) {
        for session in peer.sessions { owners[session.localIndex] = nil }
        if let pending = peer.pending { owners[pending.localIndex] = nil }
        peer.forgetSessions()
    }

    /// Frees a session's index; its keys are wiped once no table refers to it.
    func retire(_ session: Session?) {
        guard let session else { return }
        owners[session.localIndex] = nil
    }
}
