import QuantumCrypto
import QuantumDevice

// Load shedding on the control thread: cookies received from peers (and the mac2 they
// let us send), and the limits on initiations that passed the workers' checks.
extension ControlPlane {
    /// Shortest time between two initiations of one peer that this node answers, as in
    /// wireguard-go (50 a second): a replayed or forged initiation that decrypts costs a
    /// Diffie-Hellman before its timestamp can be judged, but not the response's.
    static let peerInitiationInterval: UInt64 = SessionLimits.nanosecondsPerSecond / 50

    /// Writes mac2 into a handshake message for `peer` when we hold a fresh cookie of its,
    /// and remembers the message so that a cookie reply to it can be recognised.
    func stamp(_ message: inout [UInt8], index: UInt32, for peer: Peer, now: UInt64) {
        var cookie: [UInt8]?
        if let held = peer.cookie, elapsed(since: held.receivedAt, now: now) < CookieReply.cookieLifetime {
            CookieReply.writeMAC2(in: &message, cookie: held.bytes)
            cookie = held.bytes
        }
        peer.lastSentHandshake = SentHandshake(index: index, mac1: CookieReply.mac1(of: message), cookie: cookie)
    }

    /// Takes the cookie from a reply to our last handshake message to its sender. If it
    /// answered the initiation still pending and that carried no mac2 made with this cookie,
    /// the initiation is sent again at once, now with mac2: the replier is under load and
    /// dropped it, and waiting `SessionLimits.rekeyTimeout` would only delay the session. At
    /// most once per new cookie, so honest repliers cannot make us loop.
    func consumeCookieReply(_ message: UnsafeRawBufferPointer, from source: UDPEndpoint, now: UInt64) -> Bool {
        guard let receiver = CookieReply.receiverIndex(message), let address = owners[receiver],
              let peer = peers[address], let sent = peer.lastSentHandshake, sent.index == receiver,
              let cookie = CookieReply.openCookie(message, replierPublicKey: peer.mapping.publicKey, mac1: sent.mac1)
        else {
            counters.add(.cookieRepliesRejected)
            logger.debug("cookie reply from \(source) answers no handshake message of ours; ignored")
            return false
        }
        counters.add(.cookieRepliesAccepted)
        peer.cookie = ReceivedCookie(bytes: cookie, receivedAt: now)
        logger.debug("\(address) is under load and sent a cookie")
        if let pending = peer.pending, pending.localIndex == receiver, sent.cookie != cookie {
            return initiate(peer, now: now, evenIfInFlight: true)
        }
        return false
    }

    /// Whether an initiation from `source` may go on to Diffie-Hellman: always when the
    /// node is not under load, else within the source address's rate (counted if not).
    func admitsInitiation(from source: UDPEndpoint, now: UInt64) -> Bool {
        guard load.isUnderLoad(now: now), !sourceLimiter.admits(source, now: now) else { return true }
        counters.add(.dropInitiationSourceRate)
        logger.debug("initiation from \(source) over its address's rate while under load; dropped")
        return false
    }

    /// Whether an initiation of `peer` may be answered: not within `peerInitiationInterval`
    /// of the last one answered (counted if not). Records the answer when it may.
    func admitsInitiation(of peer: Peer, now: UInt64) -> Bool {
        guard peer.lastInitiationAnswered == 0
                || elapsed(since: peer.lastInitiationAnswered, now: now) >= ControlPlane.peerInitiationInterval else {
            counters.add(.dropInitiationPeerRate)
            logger.debug("initiation from \(peer.mapping.privateIP) within \(ControlPlane.peerInitiationInterval)ns of the last; dropped")
            return false
        }
        peer.lastInitiationAnswered = now
        return true
    }
}
