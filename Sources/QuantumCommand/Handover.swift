import Foundation
import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumDevice
import QuantumNode

/// The messages of a rolling restart, between the running daemon (the predecessor) and
/// the copy of itself it started (the successor), over a `HandoverChannel`:
///
///     successor → predecessor   ready(HandoverReady)         built everything slow; asks for the state
///     predecessor → successor   state(HandoverState + fds)   data path frozen; here is all of it
///                               or abort(reason)             the new configuration is refused
///     successor → predecessor   running                      about to start its data path
///                               or stopping(reason)          exiting; it never sealed a packet
enum HandoverMessage: UInt8 {
    case ready = 1, state, abort, running, stopping
}

/// The environment variable that gives the successor its end of the channel (a descriptor
/// number). Outside the `QUANTUM_` prefix, so it is never mistaken for an option.
let handoverVariable = "QT_HANDOVER_FD"

/// What the successor tells the predecessor before asking for its state.
struct HandoverReady: Codable, Equatable {
    /// The handover format the successor reads (`HandoverState.version`).
    var version: Int
    var pid: Int32
    /// The successor's settings that a reload cannot change (`Configuration.fixedForReload`).
    var fixedSettings: [String: String]
}

/// Everything a running node hands to its successor besides the descriptors.
///
/// Extending it: add an optional field (absent in a blob from an older binary decodes as
/// nil) for state a feature must carry, e.g. the floating IPs this node holds with their
/// lease IDs, so the successor keeps them without a new election. Bump `version` only for
/// a change an older reader would misread.
struct HandoverState: Codable, Sendable {
    /// The format version this binary writes and reads.
    static let currentVersion = 1

    var version = HandoverState.currentVersion
    /// The predecessor's PID, for the successor's log.
    var fromPID: Int32
    /// Monotonic time (ns, CLOCK_MONOTONIC, the same in both processes) the data path froze.
    var frozenAt: UInt64
    var deviceName: String
    /// The descriptors come in this order: the TUN queues, then the UDP sockets.
    var queueCount: Int
    var socketCount: Int
    var privateIP: UInt32
    var network: NetworkConfig
    /// The datastore lease of the node key, nil while the node runs from its local cache
    /// and has not claimed its address yet.
    var lease: HandedLease?
    /// The peer map as the datastore side last delivered it.
    var mappings: [HandedMapping]
    /// Live links (sessions without their key bytes, which travel after the JSON).
    var links: [PeerLink]
    /// The floating IP election: lease, holdings and view (nil from a predecessor without one).
    var floating: FloatingIPElection.Handover? = nil
}

/// `Lease`, in the handover blob.
struct HandedLease: Codable, Equatable, Sendable {
    var id: Int64
    var key: String
}

/// `MappingUpdate`, in the handover blob.
struct HandedMapping: Codable, Equatable, Sendable {
    var address: UInt32
    var mapping: Mapping?
    var createRevision: Int64

    init(_ update: MappingUpdate) {
        address = update.address.value
        mapping = update.mapping
        createRevision = update.createRevision
    }

    var update: MappingUpdate {
        MappingUpdate(address: IPv4Address(address), mapping: mapping, createRevision: createRevision)
    }
}

/// Why a handover blob was refused.
struct HandoverFormatError: Error, CustomStringConvertible {
    let description: String
}

/// The blob: a 4-byte big-endian format version, a 4-byte JSON length, the JSON of
/// `HandoverState`, then the key bytes of every session in link order (current, previous,
/// next; `Session.Snapshot.keyMaterialSize` bytes each). Keys never pass through the JSON
/// encoder, so every buffer that held them can be wiped.
enum HandoverCodec {
    /// Encodes `state`, moving its key bytes into the blob and wiping them in `state`.
    static func encode(_ state: inout HandoverState) throws -> [UInt8] {
        let keyCount = state.links.reduce(0) { $0 + $1.sessionCount }
        let json = try JSONEncoder().encode(state)
        var blob: [UInt8] = []
        // One allocation: a grown buffer would leave key bytes behind in the old one.
        blob.reserveCapacity(8 + json.count + keyCount * Session.Snapshot.keyMaterialSize)
        appendBigEndian(UInt32(state.version), to: &blob)
        appendBigEndian(UInt32(json.count), to: &blob)
        blob.append(contentsOf: json)
        for index in state.links.indices {
            for snapshot in [state.links[index].current, state.links[index].previous, state.links[index].next] {
                if let snapshot { blob.append(contentsOf: snapshot.keyMaterial) }
            }
            state.links[index].wipeKeys()
        }
        return blob
    }

    /// Decodes a blob and wipes it. Refuses another format version, damaged JSON, or key
    /// bytes that do not match the sessions.
    static func decode(_ blob: inout [UInt8]) throws(HandoverFormatError) -> HandoverState {
        defer { Session.wipe(&blob) }
        guard blob.count >= 8 else { throw HandoverFormatError(description: "the handover state is \(blob.count) bytes long") }
        let version = Int(readBigEndian(blob, at: 0))
        guard version == HandoverState.currentVersion else {
            throw HandoverFormatError(description: """
                the handover state has format version \(version); this binary reads version \(HandoverState.currentVersion)
                """)
        }
        let jsonLength = Int(readBigEndian(blob, at: 4))
        guard jsonLength <= blob.count - 8 else { throw HandoverFormatError(description: "the handover state is truncated") }
        var state: HandoverState
        do {
            state = try JSONDecoder().decode(HandoverState.self, from: Data(blob[8..<8 + jsonLength]))
        } catch {
            throw HandoverFormatError(description: "the handover state does not decode: \(error)")
        }
        let size = Session.Snapshot.keyMaterialSize
        var offset = 8 + jsonLength
        let keyCount = state.links.reduce(0) { $0 + $1.sessionCount }
        guard blob.count - offset == keyCount * size else {
            throw HandoverFormatError(description: "the handover state carries \(blob.count - offset) key bytes for \(keyCount) sessions")
        }
        func take() -> [UInt8] {
            defer { offset += size }
            return Array(blob[offset..<offset + size])
        }
        for index in state.links.indices {
            if state.links[index].current != nil { state.links[index].current!.keyMaterial = take() }
            if state.links[index].previous != nil { state.links[index].previous!.keyMaterial = take() }
            if state.links[index].next != nil { state.links[index].next!.keyMaterial = take() }
        }
        return state
    }

    private static func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    private static func readBigEndian(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }
}

extension Configuration {
    /// The settings a rolling restart cannot change, by option name: the device, the
    /// sockets, the address and network, the identity's directory, the datastore prefix
    /// and the pid file are all handed over as they are. Changing one needs a restart.
    var fixedForReload: [String: String] {
        [
            "device-name": deviceName, "workers": "\(workers)", "private-ip": privateIP?.description ?? "(leased)",
            "listen-ip": listenIP ?? "(all)", "listen-port": "\(listenPort)",
            "public-v4": publicV4?.description ?? "(default route)", "public-v6": publicV6?.description ?? "(default route)",
            "disable-v4": "\(disableV4)", "disable-v6": "\(disableV6)", "data-dir": dataDir,
            "datastore-prefix": datastorePrefix, "network": "\(network.network)",
            "network-static-range": "\(network.staticRange)", "network-floating-range": "\(network.floatingRange)",
            "network-lease-time": DurationText.format(seconds: network.leaseTimeSeconds), "mtu": "\(mtu)",
            "pid-file": pidFile,
            // The successor keeps renewing the predecessor's floating IP lease, so the
            // addresses it competes for, and that lease's TTL, stay as they are.
            "floating-ips": floatingIPs.map(\.description).joined(separator: ","),
            "datastore-floating-ip-ttl": DurationText.format(seconds: datastoreFloatingIPTTL),
        ]
    }

    /// Why a reload to `new` settings must be refused, naming each changed option with its
    /// running and its new value; nil when only reloadable settings differ.
    static func reloadRefusal(running: [String: String], new: [String: String]) -> String? {
        let changed = Set(running.keys).union(new.keys).sorted().filter { running[$0] != new[$0] }
        guard !changed.isEmpty else { return nil }
        let list = changed.map { "--\($0) \(running[$0] ?? "(unset)") → \(new[$0] ?? "(unset)")" }
        return "\(list.joined(separator: ", ")) cannot change on reload; restart the service for that"
    }
}
