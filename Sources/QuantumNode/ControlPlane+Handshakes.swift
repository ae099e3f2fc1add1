import QuantumCore
import QuantumCrypto
import QuantumDevice

// Handshakes: initiating, answering and completing them, and what is sent
// with a fresh session (the confirming keepalive and the staged packets).
extension ControlPlane {
    /// Sends an initiation to `peer` unless one is already in flight (with `evenIfInFlight`,
    /// a fresh one replaces it: the peer's endpoints changed, or a cookie reply answered it).
    func initiate(_ peer: Peer, now: UInt64, evenIfInFlight: Bool = false) -> Bool {
        if !evenIfInFlight, let pending = peer.pending,
           elapsed(since: pending.sentAt, now: now) < SessionLimits.rekeyTimeout { return false }
        guard !endpointsToTry(peer).isEmpty else {
            peer.signals.handshakeWanted.store(false, ordering: .relaxed)
            return false
        }
        let index = freshIndex(for: peer.mapping.privateIP)
        var message: [UInt8]
        let state: InitiatorState
        do {
            (message, state) = try handshaker.makeInitiation(
                peerPublicKey: peer.mapping.publicKey, senderIndex: index, timestamp: clock.timestamp())
        } catch {
            owners[index] = nil
            peer.signals.handshakeWanted.store(false, ordering: .relaxed)
            logger.warning("cannot start a handshake with \(peer.mapping.privateIP): \(error)")
            return false
        }
        choosePath(for: peer, now: now)
        stamp(&message, index: index, for: peer, now: now)
        if let old = peer.pending { owners[old.localIndex] = nil }
        peer.pending = PendingInitiation(state: state, localIndex: index, sentAt: now,
                                         firstAttemptAt: peer.pending?.firstAttemptAt ?? now)
        counters.add(.handshakesInitiated)
        // Directly: one copy to every endpoint the peer may be at. Through a relay: one copy.
        let endpoints = endpointsToTry(peer)
        let targets = relayEndpoint(of: peer) == nil ? endpoints : [endpoints[0]]
        logger.debug("handshake initiation to \(peer.mapping.privateIP) \(peer.relay.map { "through relay \($0)" } ?? "at " + endpoints.map(\.description).joined(separator: ", "))")
        for endpoint in targets { outbox.append(datagram(message, to: peer, endpoint: endpoint, worker: 0)) }
        return false
    }

    /// Notes a key that completed the Noise part of an initiation (so its holder has the
    /// private key) before any mapping carried it. Bounded: the oldest is forgotten first.
    private func rememberStranger(_ publicKey: [UInt8], now: UInt64) {
        if strangers[publicKey] == nil, strangers.count >= ControlPlane.strangerLimit,
           let oldest = strangers.min(by: { $0.value < $1.value })?.key {
            strangers[oldest] = nil
        }
        strangers[publicKey] = now
    }

    /// Starts a handshake with every recent stranger whose mapping has now arrived, so
    /// that a node that registered a moment ago is reached at once rather than after
    /// the peer's retry (`SessionLimits.rekeyTimeout`). Forgets strangers past their memory.
    func greetStrangers(now: UInt64) {
        for (publicKey, seen) in strangers {
            if elapsed(since: seen, now: now) > ControlPlane.strangerMemory {
                strangers[publicKey] = nil
            } else if let peer = peer(owning: publicKey) {
                strangers[publicKey] = nil
                logger.debug("\(peer.mapping.privateIP) tried to reach this node before its mapping arrived; answering with a handshake")
                _ = initiate(peer, now: now)
            }
        }
    }

    /// Answers a valid initiation from the owner of its key with a fresh session in `next`
    /// (`relayed`: it came through a relay, and the response goes back the same way).
    func respond(to message: UnsafeRawBufferPointer, from source: UDPEndpoint, worker: Int, now: UInt64,
                 relayed: RelayedArrival? = nil) -> Bool {
        guard admitsInitiation(from: source, now: now) else { return false }
        let initiation: ReceivedInitiation
        do {
            initiation = try handshaker.consumeInitiation(message)
        } catch {
            counters.add(.handshakesRejected)
            logger.debug("initiation from \(source) rejected: \(error)")
            return false
        }
        guard let peer = peer(owning: initiation.peerPublicKey) else {
            counters.add(.handshakesRejected)
            rememberStranger(initiation.peerPublicKey, now: now)
            logger.debug("initiation from \(source) with a key no mapping carries; ignored")
            return false
        }
        guard arrivedAsClaimed(peer, relayed) else { return false }
        if let newest = peer.newestTimestamp, initiation.timestamp <= newest {
            counters.add(.handshakesRejected)
            logger.debug("initiation from \(peer.mapping.privateIP) replays an old timestamp; ignored")
            return false
        }
        guard admitsInitiation(of: peer, now: now) else { return false }
        peer.newestTimestamp = initiation.timestamp
        let index = freshIndex(for: peer.mapping.privateIP)
        var response: [UInt8]
        let session: Session
        do {
            let keys: SessionKeys
            (response, keys) = try handshaker.makeResponse(to: initiation, senderIndex: index,
                                                           observedEndpoint: source.observedBytes)
            session = try Session(keys: keys, workers: workerCount + 1, now: now)
        } catch {
            owners[index] = nil
            counters.add(.handshakesRejected)
            logger.warning("cannot answer the handshake of \(peer.mapping.privateIP): \(error)")
            return false
        }
        stamp(&response, index: index, for: peer, now: now)
        retire(peer.next)
        // The peer's endpoint stays: an initiation proves nothing about where the peer is (it
        // may be replayed from anywhere); the session's first packet moves it (`sessionConfirmed`).
        // The response goes back the way the initiation came: through the relay it came
        // through (which then carries the peer's traffic), or straight to `source`.
        peer.next = session
        if let relayed { takePath(of: peer, from: source, relayed: relayed, now: now) }
        counters.add(.handshakesCompleted)
        logger.debug("handshake with \(peer.mapping.privateIP) answered (session \(index))")
        outbox.append(datagram(response, to: peer, endpoint: source, worker: worker, direct: relayed == nil))
        return true
    }

    /// Completes our initiation with the peer's response.
    ///
    /// If we also answered an initiation of the peer meanwhile (both sides initiated at
    /// once), that responder session is demoted to `previous` and never promoted: the
    /// session we initiated becomes current, so each side keeps a session it initiated
    /// and keeps rekeying it on time.
    func complete(with message: UnsafeRawBufferPointer, from source: UDPEndpoint, worker: Int, now: UInt64,
                  relayed: RelayedArrival? = nil) -> Bool {
        guard let receiver = HandshakeResponse.receiverIndex(message), let address = owners[receiver],
              let peer = peers[address], let pending = peer.pending, pending.localIndex == receiver else {
            counters.add(.handshakesRejected)
            return false
        }
        guard arrivedAsClaimed(peer, relayed) else { return false }
        let session: Session
        let observed: [UInt8]
        do {
            let keys: SessionKeys
            (keys, observed) = try handshaker.consumeResponse(message, state: pending.state)
            session = try Session(keys: keys, workers: workerCount + 1, now: now)
        } catch {
            counters.add(.handshakesRejected)
            logger.debug("response from \(source) rejected: \(error)")
            return false
        }
        peer.pending = nil
        retire(peer.previous)
        if let next = peer.next {
            retire(peer.current)
            peer.previous = next
            peer.next = nil
        } else {
            peer.previous = peer.current
        }
        peer.current = session
        takePath(of: peer, from: source, relayed: relayed, now: now)
        peer.signals.handshakeWanted.store(false, ordering: .relaxed)
        counters.add(.handshakesCompleted)
        logger.debug("handshake with \(address) complete (session \(receiver))")
        learnReflexiveEndpoint(observed, from: peer, now: now)
        // Confirm the session to the responder at once, so it can send with it.
        sendKeepalive(peer, session: session, to: source, worker: worker, now: now)
        sendStaged(peer, now: now)
        return true
    }

    /// Sends an empty transport message on `session` (sealed with the control slot)
    /// from worker `worker`'s socket, through the peer's relay if it has one unless `direct`.
    func sendKeepalive(_ peer: Peer, session: Session, to endpoint: UDPEndpoint, worker: Int, now: UInt64,
                       counter: ControlCounter = .keepalivesSent, direct: Bool = false) {
        var buffer = [UInt8](repeating: 0, count: WireFormat.transportOverhead)
        let length = buffer.withUnsafeMutableBytes {
            session.seal($0.baseAddress!, payloadLength: 0, worker: controlSlot, flags: 0)
        }
        guard let length else { return }
        peer.lastKeepaliveSent = now
        counters.add(counter)
        outbox.append(datagram(Array(buffer[0..<length]), to: peer, endpoint: endpoint, worker: worker, direct: direct))
    }

    /// Seals and sends the packets that waited for this peer's session.
    func sendStaged(_ peer: Peer, now: UInt64) {
        defer {
            peer.staged.removeAll()
            peer.signals.staged.store(0, ordering: .relaxed)
        }
        guard !peer.staged.isEmpty, let session = peer.current, let endpoint = peer.endpoint else { return }
        for packet in peer.staged {
            var message = [UInt8](repeating: 0, count: packet.count + WireFormat.transportOverhead)
            message.replaceSubrange(WireFormat.transportHeaderSize..<WireFormat.transportHeaderSize + packet.count, with: packet)
            let length = message.withUnsafeMutableBytes {
                session.seal($0.baseAddress!, payloadLength: packet.count, worker: controlSlot, flags: 0)
            }
            guard let length else { break }
            outbox.append(datagram(Array(message[0..<length]), to: peer, endpoint: endpoint, worker: 0))
            counters.add(.stagedSent)
            peer.signals.traffic.add(.txPackets, slot: controlSlot)
            peer.signals.traffic.add(.txBytes, UInt64(packet.count), slot: controlSlot)
        }
        peer.signals.lastDataSent.store(now, ordering: .relaxed)
    }

    /// A random local index not in use.
    func freshIndex(for address: IPv4Address) -> UInt32 {
        while true {
            let index = UInt32.random(in: 1...UInt32.max)
            if owners[index] == nil {
                owners[index] = address
                return index
            }
        }
    }
}
