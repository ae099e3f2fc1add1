import QuantumCore
import QuantumCrypto
import QuantumDevice

/// The control plane's view of one peer: the mapping it owns, its sessions and
/// handshake state. Touched by the control thread only.
final class Peer {
    var mapping: Mapping
    var endpoint: UDPEndpoint?
    let signals: PeerSignals
    /// The session we send with.
    var current: Session?
    /// The session before `current`, kept to receive packets still in flight.
    var previous: Session?
    /// A responder session waiting for the initiator's first packet.
    var next: Session?
    var pending: PendingInitiation?
    /// Packets waiting for a session, oldest first.
    var staged: [[UInt8]] = []
    /// When the control thread last sent this peer a keepalive.
    var lastKeepaliveSent: UInt64 = 0
    /// The newest initiation timestamp accepted from this peer (against replayed initiations).
    var newestTimestamp: TAI64N?
    /// The private address of the relay this peer is reached through; nil when direct
    /// (ControlPlane+Relay.swift).
    var relay: IPv4Address?
    /// When handshakes on the current path (direct or `relay`) began to go unanswered.
    var pathTriedAt: UInt64 = 0
    /// When the direct path was last probed while relayed.
    var lastDirectProbe: UInt64 = 0
    /// When this node last answered an initiation of this peer (per-peer initiation limit).
    var lastInitiationAnswered: UInt64 = 0
    /// The newest cookie this peer sent us, used for mac2 while fresh.
    var cookie: ReceivedCookie?
    /// The handshake message we sent this peer last (a cookie reply must answer it).
    var lastSentHandshake: SentHandshake?

    /// - Parameter slots: the sessions' AEAD slots (workers + the control thread), one counter cell each.
    init(mapping: Mapping, endpoint: UDPEndpoint?, slots: Int) {
        self.mapping = mapping
        self.endpoint = endpoint
        signals = PeerSignals(slots: slots)
    }

    var sessions: [Session] { [current, previous, next].compactMap { $0 } }

    /// Forgets every session. Keys are wiped when the last reference goes: a worker
    /// may still be sealing with one from the previous table, so never wipe here.
    func forgetSessions() {
        staged.removeAll()
        signals.staged.store(0, ordering: .relaxed)
        signals.handshakeWanted.store(false, ordering: .relaxed)
        current = nil
        previous = nil
        next = nil
        pending = nil
    }
}

/// An initiation we sent and await a response to.
struct PendingInitiation {
    let state: InitiatorState
    let localIndex: UInt32
    let sentAt: UInt64
    let firstAttemptAt: UInt64
}

/// A cookie a peer sent in a cookie reply, and when.
struct ReceivedCookie {
    let bytes: [UInt8]
    let receivedAt: UInt64
}

/// What a cookie reply to one of our handshake messages must match.
struct SentHandshake {
    /// The message's sender index (the reply's receiver index).
    let index: UInt32
    /// Its mac1 (the reply's additional data).
    let mac1: [UInt8]
    /// The cookie its mac2 was made with, if any.
    let cookie: [UInt8]?
}
