import Glibc
import QuantumCore
import QuantumCrypto
import QuantumDevice
import Synchronization

/// What this node learned about its own reflexive endpoint (where its peers see its packets
/// come from) and whom it asked. Touched by the control thread only.
///
/// Trust rule: a report is an authenticated handshake response from a peer that owns its
/// mapping's key, so it is believed as far as "try this address" goes — never further: a
/// peer that tries a reflexive endpoint still needs an authenticated answer from it before
/// it sends there. Each peer holds one report (its newest), so a lying peer adds at most one
/// candidate, and endpoints reported by more peers come first.
struct NATTraversal {
    /// The newest reflexive endpoint each peer reported.
    private(set) var reports: [IPv4Address: IPv4Endpoint] = [:]
    /// Peers already handshaked with to learn the reflexive endpoint (each is asked once).
    var probed: Set<IPv4Address> = []
    /// This node's configured endpoint (from its own mapping): a report of it is no candidate.
    var configured: IPv4Endpoint?

    /// Most peers asked at once while the reflexive endpoint is unknown.
    static let probeLimit = 3

    /// Whether any peer has reported where it sees this node (then probing stops).
    var hasLearned: Bool { !reports.isEmpty }

    /// The reflexive endpoints to publish: those that are not the configured endpoint, most
    /// reporters first (ties: lower endpoint first, so the order is stable), at most
    /// `Mapping.candidateLimit`. Empty when the peers see this node where it says it is.
    var candidates: [IPv4Endpoint] {
        var reporters: [IPv4Endpoint: Int] = [:]
        for endpoint in reports.values where endpoint != configured { reporters[endpoint, default: 0] += 1 }
        let ordered = reporters.sorted { a, b in
            a.value != b.value ? a.value > b.value
                : (a.key.address, a.key.port) < (b.key.address, b.key.port)
        }
        return ordered.prefix(Mapping.candidateLimit).map(\.key)
    }

    /// Records `peer`'s report; returns true if the published candidates change.
    mutating func record(_ endpoint: IPv4Endpoint, from peer: IPv4Address) -> Bool {
        let before = candidates
        reports[peer] = endpoint
        return candidates != before
    }

    /// Sets the configured endpoint; returns true if the candidates change.
    mutating func configure(_ endpoint: IPv4Endpoint?) -> Bool {
        let before = candidates
        configured = endpoint
        return candidates != before
    }

    /// Forgets what `peer` reported (it left); returns true if the candidates change.
    mutating func forget(_ peer: IPv4Address) -> Bool {
        probed.remove(peer)
        let before = candidates
        reports[peer] = nil
        return candidates != before
    }
}

/// The reflexive endpoints the control thread last learned, for the datastore side to
/// publish in this node's mapping (read from any thread).
final class ReflexiveCandidates: Sendable {
    private let value = Mutex<[IPv4Endpoint]>([])

    var current: [IPv4Endpoint] { value.withLock { $0 } }

    func set(_ candidates: [IPv4Endpoint]) { value.withLock { $0 = candidates } }
}

extension UDPEndpoint {
    /// The endpoint as a response's observed-endpoint payload (layout in WireFormat.swift).
    var observedBytes: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: WireFormat.observedEndpointSize)
        if Int32(storage.sin6_family) == AF_INET {
            let v4 = withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in.self) }
            let address = UInt32(bigEndian: v4.sin_addr.s_addr)
            bytes[10] = 0xff
            bytes[11] = 0xff
            withUnsafeBytes(of: address.bigEndian) { bytes.replaceSubrange(12..<16, with: $0) }
        } else {
            withUnsafeBytes(of: storage.sin6_addr) { bytes.replaceSubrange(0..<16, with: $0) }
        }
        withUnsafeBytes(of: port.littleEndian) { bytes.replaceSubrange(16..<18, with: $0) }
        return bytes
    }

    /// The IPv4 endpoint this is (plain or mapped into IPv6), nil for a real IPv6 endpoint.
    var ipv4Endpoint: IPv4Endpoint? {
        IPv4Endpoint(observedBytes: observedBytes)
    }

    /// `endpoint` in the form a socket of `family` uses.
    init(_ endpoint: IPv4Endpoint, family: UDPSocket.Family) {
        self.init(endpoint.address, port: endpoint.port, family: family)
    }
}

extension IPv4Endpoint {
    /// Reads an observed-endpoint payload; nil unless it holds an IPv4 (mapped) address and a port.
    init?(observedBytes bytes: [UInt8]) {
        guard bytes.count == WireFormat.observedEndpointSize, bytes[0..<10].allSatisfy({ $0 == 0 }),
              bytes[10] == 0xff, bytes[11] == 0xff else { return nil }
        let address = IPv4Address(UInt32(bytes[12]) << 24 | UInt32(bytes[13]) << 16 | UInt32(bytes[14]) << 8 | UInt32(bytes[15]))
        let port = UInt16(bytes[16]) | UInt16(bytes[17]) << 8
        guard port != 0, !address.isUnspecified else { return nil }
        self.init(address, port: port)
    }
}
