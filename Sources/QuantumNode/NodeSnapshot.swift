import Foundation
import QuantumCore
import Synchronization

/// What the stats endpoint shows of a node: every counter of every worker and of the
/// control thread, and each peer as the control thread last published it, with the peer's
/// counters read at the moment of the snapshot. Built off the data path; it allocates.
public struct NodeSnapshot: Sendable {
    /// One peer of the node.
    public struct PeerState: Sendable {
        /// Where the peer's sessions stand.
        public enum SessionState: String, Sendable {
            /// A session to send with exists (a rekey may be running).
            case established
            /// A handshake is in flight and no session exists yet.
            case handshaking
            /// Neither: no traffic has asked for one, or the last handshake gave up.
            case none
        }

        public let privateIP: IPv4Address
        /// `ip:port` the peer is reached at; nil when it has no reachable endpoint.
        public let endpoint: String?
        /// The peer's static Curve25519 public key.
        public let publicKey: [UInt8]
        public let session: SessionState
        /// Nanoseconds since the handshake of the session in use completed; nil without one.
        public let lastHandshakeAge: UInt64?
        /// The peer's counters summed over the threads.
        public let counters: [PeerCounter: UInt64]
        /// The private address of the relay the peer is reached through; nil when direct.
        public let relay: IPv4Address?

        public init(privateIP: IPv4Address, endpoint: String?, publicKey: [UInt8], session: SessionState,
                    lastHandshakeAge: UInt64?, counters: [PeerCounter: UInt64], relay: IPv4Address? = nil) {
            self.privateIP = privateIP
            self.endpoint = endpoint
            self.publicKey = publicKey
            self.session = session
            self.lastHandshakeAge = lastHandshakeAge
            self.counters = counters
            self.relay = relay
        }
    }

    /// This node's private address and public key.
    public let privateIP: IPv4Address
    public let publicKey: [UInt8]
    /// The counters of each worker (one TUN queue and socket each), by worker index.
    public let queues: [[WorkerCounter: UInt64]]
    /// The control thread's counters.
    public let control: [ControlCounter: UInt64]
    /// The peers, by ascending address.
    public let peers: [PeerState]

    public init(privateIP: IPv4Address, publicKey: [UInt8], queues: [[WorkerCounter: UInt64]],
                control: [ControlCounter: UInt64], peers: [PeerState]) {
        self.privateIP = privateIP
        self.publicKey = publicKey
        self.queues = queues
        self.control = control
        self.peers = peers
    }

    /// A worker counter summed over the queues.
    public func total(_ name: WorkerCounter) -> UInt64 {
        queues.reduce(0) { $0 &+ ($1[name] ?? 0) }
    }

    /// How many peers have a session to send with.
    public var liveSessions: Int { peers.count { $0.session == .established } }
}

/// One peer as the control thread published it for snapshots.
struct PeerRecord: Sendable {
    let privateIP: IPv4Address
    let endpoint: String?
    let publicKey: [UInt8]
    let session: NodeSnapshot.PeerState.SessionState
    /// Monotonic time the session in use was created (its handshake completed).
    let handshakeAt: UInt64?
    let traffic: PeerTraffic
    /// The relay the peer is reached through; nil when direct.
    let relay: IPv4Address?
}

/// The peer records of the last publication: written by the control thread when a snapshot
/// asked for them (never otherwise: with 10,000 peers, building them after every table or
/// tick would cost memory and time for nobody), read by the stats endpoint (a lock, but never
/// taken on the data path). A snapshot sleeps on the condition until the control thread
/// publishes, rather than polling.
final class PeerDirectory: @unchecked Sendable { // `generation` and `records` only under `condition`
    private let condition = NSCondition()
    private var generation: UInt64 = 0
    private var records: [PeerRecord] = []
    /// Set by a snapshot; the control thread publishes at the end of its next turn.
    let requested = Atomic<Bool>(false)

    func publish(_ new: [PeerRecord]) {
        condition.lock()
        generation &+= 1
        records = new
        condition.broadcast()
        condition.unlock()
    }

    /// How many publications there were.
    var publications: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return generation
    }

    /// Waits until there were more than `seen` publications, or until `deadline` passes.
    func waitForPublication(after seen: UInt64, until deadline: Date) {
        condition.lock()
        defer { condition.unlock() }
        while generation == seen, condition.wait(until: deadline) {}
    }

    func load() -> [PeerRecord] {
        condition.lock()
        defer { condition.unlock() }
        return records
    }
}

extension ControlPlane {
    /// Asks the control thread to publish the directory at the end of its next turn.
    func requestDirectory() {
        directory.requested.store(true, ordering: .releasing)
        wakeUp()
    }

    /// Publishes the directory if a snapshot asked for it (control thread, end of a turn).
    func publishDirectoryIfRequested() {
        if directory.requested.exchange(false, ordering: .acquiringAndReleasing) { publishDirectory() }
    }

    /// Publishes what snapshots show of every peer (control thread).
    func publishDirectory() {
        let records = peers.values.map { peer in
            let state: NodeSnapshot.PeerState.SessionState =
                peer.current != nil ? .established : peer.pending != nil ? .handshaking : .none
            return PeerRecord(privateIP: peer.mapping.privateIP, endpoint: peer.endpoint?.description,
                              publicKey: peer.mapping.publicKey, session: state,
                              handshakeAt: peer.current?.createdAt, traffic: peer.signals.traffic,
                              relay: relayEndpoint(of: peer) == nil ? nil : peer.relay)
        }
        directory.publish(records.sorted { $0.privateIP.value < $1.privateIP.value })
    }

    /// A snapshot of the peers as last published, their counters read now.
    func peerStates(now: UInt64) -> [NodeSnapshot.PeerState] {
        directory.load().map { record in
            let counters = Dictionary(uniqueKeysWithValues: PeerCounter.allCases.map { ($0, record.traffic.total($0)) })
            return NodeSnapshot.PeerState(
                privateIP: record.privateIP, endpoint: record.endpoint, publicKey: record.publicKey,
                session: record.session, lastHandshakeAge: record.handshakeAt.map { elapsed(since: $0, now: now) },
                counters: counters, relay: record.relay)
        }
    }
}
