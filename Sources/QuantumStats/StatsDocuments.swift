import Foundation
import QuantumCore
import QuantumDatastore
import QuantumNode

/// Packets and bytes handled and dropped: one entry of upstream quantum's `/stats` document.
public struct TrafficCounts: Codable, Sendable, Equatable {
    public var packets: UInt64
    public var bytes: UInt64
    public var droppedPackets: UInt64
    public var droppedBytes: UInt64

    public init(packets: UInt64, bytes: UInt64, droppedPackets: UInt64, droppedBytes: UInt64) {
        self.packets = packets
        self.bytes = bytes
        self.droppedPackets = droppedPackets
        self.droppedBytes = droppedBytes
    }
}

/// `GET <stats-route>`: upstream quantum's statistics document, `tx` and `rx`, each with the
/// node's totals, `links` keyed by peer private IP and `queues` keyed by worker index.
///
/// Totals and queues count what the workers moved (`tx`: sealed and accepted by the socket;
/// `rx`: written to the TUN device). Links count per peer: `tx` what was sealed for the peer
/// (staged packets sent after a handshake included), `rx` what was authenticated and handed
/// to the device; drops whose reason belongs to no peer (no route, malformed datagrams,
/// send and device failures) appear only in the totals and queues.
public struct StatsReport: Codable, Sendable, Equatable {
    /// One direction.
    public struct Direction: Codable, Sendable, Equatable {
        public var packets: UInt64
        public var bytes: UInt64
        public var droppedPackets: UInt64
        public var droppedBytes: UInt64
        public var links: [String: TrafficCounts]
        public var queues: [String: TrafficCounts]
    }

    public var tx: Direction
    public var rx: Direction

    public init(_ snapshot: NodeSnapshot) {
        tx = Self.direction(snapshot, worker: (.txPackets, .txBytes, .txDroppedPackets, .txDroppedBytes),
                            peer: (.txPackets, .txBytes, .txDroppedPackets, .txDroppedBytes))
        rx = Self.direction(snapshot, worker: (.rxPackets, .rxBytes, .rxDroppedPackets, .rxDroppedBytes),
                            peer: (.rxPackets, .rxBytes, .rxDroppedPackets, .rxDroppedBytes))
    }

    private static func direction(
        _ snapshot: NodeSnapshot,
        worker names: (WorkerCounter, WorkerCounter, WorkerCounter, WorkerCounter),
        peer peerNames: (PeerCounter, PeerCounter, PeerCounter, PeerCounter)
    ) -> Direction {
        var queues: [String: TrafficCounts] = [:]
        for (index, counters) in snapshot.queues.enumerated() {
            queues[String(index)] = TrafficCounts(
                packets: counters[names.0] ?? 0, bytes: counters[names.1] ?? 0,
                droppedPackets: counters[names.2] ?? 0, droppedBytes: counters[names.3] ?? 0)
        }
        var links: [String: TrafficCounts] = [:]
        for peer in snapshot.peers {
            links[peer.privateIP.description] = peer.traffic(peerNames)
        }
        return Direction(packets: snapshot.total(names.0), bytes: snapshot.total(names.1),
                         droppedPackets: snapshot.total(names.2), droppedBytes: snapshot.total(names.3),
                         links: links, queues: queues)
    }
}

extension NodeSnapshot.PeerState {
    /// Four of the peer's counters as one entry.
    func traffic(_ names: (PeerCounter, PeerCounter, PeerCounter, PeerCounter)) -> TrafficCounts {
        TrafficCounts(packets: counters[names.0] ?? 0, bytes: counters[names.1] ?? 0,
                      droppedPackets: counters[names.2] ?? 0, droppedBytes: counters[names.3] ?? 0)
    }
}

/// `GET /peers` (a list of these): what an operator needs to debug one link.
public struct PeerReport: Codable, Sendable, Equatable {
    public var privateIP: String
    /// `ip:port` of the peer's underlay endpoint; absent when it has none.
    public var endpoint: String?
    /// The peer's Curve25519 public key, base64.
    public var publicKey: String
    /// `established`, `handshaking` or `none`.
    public var session: String
    /// Seconds since the handshake of the session in use; absent without a session.
    public var lastHandshakeSecondsAgo: Double?
    public var tx: TrafficCounts
    public var rx: TrafficCounts
    /// How packets reach the peer: `direct`, or `relayed via <relay private IP>`.
    public var path: String

    public init(_ peer: NodeSnapshot.PeerState) {
        privateIP = peer.privateIP.description
        endpoint = peer.endpoint
        publicKey = Data(peer.publicKey).base64EncodedString()
        session = peer.session.rawValue
        lastHandshakeSecondsAgo = peer.lastHandshakeAge.map { Double($0) / 1e9 }
        tx = peer.traffic((.txPackets, .txBytes, .txDroppedPackets, .txDroppedBytes))
        rx = peer.traffic((.rxPackets, .rxBytes, .rxDroppedPackets, .rxDroppedBytes))
        path = peer.relay.map { "relayed via \($0)" } ?? "direct"
    }
}

/// `GET /node`: this node, for the first line of `quantum status`.
public struct NodeReport: Codable, Sendable, Equatable {
    /// Whether the node follows the datastore.
    public struct Datastore: Codable, Sendable, Equatable {
        /// True while the watch on the map of nodes runs.
        public var watchConnected: Bool
        /// Seconds since the map was last listed or a watch message arrived; absent before the first.
        public var lastSyncSecondsAgo: Double?
    }

    public var privateIP: String
    /// This node's public key, base64.
    public var publicKey: String
    public var peers: Int
    /// Peers with a session to send with.
    public var sessions: Int
    public var tx: TrafficCounts
    public var rx: TrafficCounts
    public var datastore: Datastore

    public init(_ snapshot: NodeSnapshot, sync: NetworkRegistry.SyncStatus) {
        privateIP = snapshot.privateIP.description
        publicKey = Data(snapshot.publicKey).base64EncodedString()
        peers = snapshot.peers.count
        sessions = snapshot.liveSessions
        tx = TrafficCounts(packets: snapshot.total(.txPackets), bytes: snapshot.total(.txBytes),
                           droppedPackets: snapshot.total(.txDroppedPackets), droppedBytes: snapshot.total(.txDroppedBytes))
        rx = TrafficCounts(packets: snapshot.total(.rxPackets), bytes: snapshot.total(.rxBytes),
                           droppedPackets: snapshot.total(.rxDroppedPackets), droppedBytes: snapshot.total(.rxDroppedBytes))
        datastore = Datastore(watchConnected: sync.watchConnected, lastSyncSecondsAgo: sync.lastSyncAge.map(Self.seconds))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// The JSON encoder of every document: sorted keys, so the output is stable.
enum StatsJSON {
    static func encode<Value: Encodable>(_ value: Value, pretty: Bool = false) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        return Array(try encoder.encode(value))
    }
}
