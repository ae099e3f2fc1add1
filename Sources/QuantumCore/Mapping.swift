import Foundation

/// What every node publishes about itself at `<prefix>/nodes/<privateIP>` (DESIGN.md §4):
/// how to reach it and which key it speaks with.
///
/// The fields live in one immutable heap box that all copies share, so the registry, the
/// control plane and a peer holding the same mapping store it once (a mapping is one pointer
/// inline, not 112 bytes). They read and write as properties (`mapping.port`, through
/// ``Fields``); a write gives this copy a new box, which is fine for values that change only
/// on the control plane, never per packet.
@dynamicMemberLookup
public struct Mapping: Equatable, Sendable, Codable {
    /// The stored fields of a mapping, read and written as properties of ``Mapping``.
    public struct Fields: Equatable, Sendable {
        /// The persistent random ID of the machine holding this address (32 hex digits).
        public var machineID: String
        /// The node's address on the private network.
        public var privateIP: IPv4Address
        /// Public IPv4 endpoint address, if the node is reachable over IPv4.
        public var ipv4: IPv4Address?
        /// Public IPv6 endpoint address, if the node is reachable over IPv6.
        public var ipv6: IPv6Address?
        /// The node's UDP port.
        public var port: UInt16
        /// The node's Curve25519 static public key (32 bytes).
        public var publicKey: [UInt8]
        /// Data-path plugins the node offers (`Plugin` raw values, e.g. `compression`).
        public var plugins: [String]
        /// Floating IPs the node serves.
        public var floating: [IPv4Address]
        /// The node's gateway, if it forwards traffic for outside the network.
        public var gatewayIP: IPv4Address?
        /// A CA-signed certificate binding `publicKey` to `privateIP`, when a network CA is used.
        public var certificate: String?
        /// Reflexive endpoints: where peers saw this node's handshakes come from when that is not
        /// its configured endpoint (it is behind NAT). Peers try them besides the configured one.
        /// At most `Mapping.candidateLimit`; absent from the JSON when empty.
        public var candidates: [IPv4Endpoint] = []
        /// Whether the node forwards relay envelopes between other nodes (`--relay`); absent
        /// from the JSON when false, so older mappings decode and unchanged ones stay byte-equal.
        public var relay: Bool
    }

    /// The shared, immutable storage of the fields.
    private final class Box: Sendable {
        let fields: Fields

        init(_ fields: Fields) {
            self.fields = fields
        }
    }

    /// This value's fields, shared with its copies until one of them is written.
    private var box: Box

    /// Most reflexive endpoints a mapping may carry.
    public static let candidateLimit = 4

    /// A mapping without reflexive candidates (set `candidates` once peers have reported some).
    public init(machineID: String, privateIP: IPv4Address, ipv4: IPv4Address?, ipv6: IPv6Address?,
                port: UInt16, publicKey: [UInt8], plugins: [String] = [], floating: [IPv4Address] = [],
                gatewayIP: IPv4Address? = nil, certificate: String? = nil, relay: Bool = false) {
        box = Box(Fields(machineID: machineID, privateIP: privateIP, ipv4: ipv4, ipv6: ipv6, port: port,
                         publicKey: publicKey, plugins: plugins, floating: floating, gatewayIP: gatewayIP,
                         certificate: certificate, relay: relay))
    }

    /// Reads or writes one field (`mapping.port`); a write replaces this copy's box, never
    /// touching the copies that share the old one.
    public subscript<T>(dynamicMember field: WritableKeyPath<Fields, T>) -> T {
        get { box.fields[keyPath: field] }
        set {
            var fields = box.fields
            fields[keyPath: field] = newValue
            box = Box(fields)
        }
    }

    /// Equal fields; copies sharing a box are equal without comparing them.
    public static func == (lhs: Mapping, rhs: Mapping) -> Bool {
        lhs.sharesFields(with: rhs) || lhs.box.fields == rhs.box.fields
    }

    /// Whether this mapping and `other` are copies of one value: the same box, stored once.
    func sharesFields(with other: Mapping) -> Bool {
        box === other.box
    }

    enum CodingKeys: String, CodingKey {
        case machineID, privateIP, ipv4, ipv6, port, publicKey, plugins, floating, gatewayIP, certificate
        case candidates
        case relay
    }

    /// Decodes and validates a stored mapping; the error names the field that is wrong.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func bad(_ key: CodingKeys, _ why: String) -> DecodingError {
            DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: why)
        }
        func v4(_ key: CodingKeys) throws -> IPv4Address? {
            guard let text = try c.decodeIfPresent(String.self, forKey: key), !text.isEmpty else { return nil }
            guard let address = IPv4Address(text) else { throw bad(key, "'\(text)' is not an IPv4 address") }
            return address
        }
        let machineID = try c.decode(String.self, forKey: .machineID)
        guard machineID.utf8.count == 32, machineID.utf8.allSatisfy({ UInt8(ascii: "0")...UInt8(ascii: "9") ~= $0
            || UInt8(ascii: "a")...UInt8(ascii: "f") ~= $0 || UInt8(ascii: "A")...UInt8(ascii: "F") ~= $0 }) else {
            throw bad(.machineID, "'\(machineID)' is not 32 hex digits")
        }
        guard let privateIP = try v4(.privateIP) else { throw bad(.privateIP, "missing") }
        let ipv4 = try v4(.ipv4)
        var ipv6: IPv6Address?
        if let text = try c.decodeIfPresent(String.self, forKey: .ipv6), !text.isEmpty {
            guard let address = IPv6Address(text) else { throw bad(.ipv6, "'\(text)' is not an IPv6 address") }
            ipv6 = address
        }
        guard ipv4 != nil || ipv6 != nil else { throw bad(.ipv4, "the mapping has neither ipv4 nor ipv6") }
        let port = try c.decode(Int.self, forKey: .port)
        guard (1...65535).contains(port) else { throw bad(.port, "\(port) is not a port number") }
        let key = try c.decode(String.self, forKey: .publicKey)
        guard let keyBytes = Data(base64Encoded: key), keyBytes.count == 32 else {
            throw bad(.publicKey, "not a base64 32-byte Curve25519 key")
        }
        let plugins = try c.decodeIfPresent([String].self, forKey: .plugins) ?? []
        let floating = try (c.decodeIfPresent([String].self, forKey: .floating) ?? []).map {
            guard let address = IPv4Address($0) else { throw bad(.floating, "'\($0)' is not an IPv4 address") }
            return address
        }
        let gatewayIP = try v4(.gatewayIP)
        let certificate = try c.decodeIfPresent(String.self, forKey: .certificate)
        let candidates = try c.decodeIfPresent([String].self, forKey: .candidates) ?? []
        guard candidates.count <= Mapping.candidateLimit else {
            throw bad(.candidates, "\(candidates.count) candidates, at most \(Mapping.candidateLimit) allowed")
        }
        let endpoints = try candidates.map {
            guard let endpoint = IPv4Endpoint($0) else { throw bad(.candidates, "'\($0)' is not an IPv4 address:port") }
            return endpoint
        }
        let relay = try c.decodeIfPresent(Bool.self, forKey: .relay) ?? false
        box = Box(Fields(machineID: machineID, privateIP: privateIP, ipv4: ipv4, ipv6: ipv6, port: UInt16(port),
                         publicKey: Array(keyBytes), plugins: plugins, floating: floating, gatewayIP: gatewayIP,
                         certificate: certificate, candidates: endpoints, relay: relay))
    }

    /// Encodes the mapping as stored in etcd (see ``json()``).
    public func encode(to encoder: any Encoder) throws {
        let fields = box.fields
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(fields.machineID, forKey: .machineID)
        try c.encode(fields.privateIP.description, forKey: .privateIP)
        try c.encodeIfPresent(fields.ipv4?.description, forKey: .ipv4)
        try c.encodeIfPresent(fields.ipv6?.description, forKey: .ipv6)
        try c.encode(Int(fields.port), forKey: .port)
        try c.encode(Data(fields.publicKey).base64EncodedString(), forKey: .publicKey)
        try c.encode(fields.plugins, forKey: .plugins)
        try c.encode(fields.floating.map(\.description), forKey: .floating)
        try c.encodeIfPresent(fields.gatewayIP?.description, forKey: .gatewayIP)
        try c.encodeIfPresent(fields.certificate, forKey: .certificate)
        if !fields.candidates.isEmpty { try c.encode(fields.candidates.map(\.description), forKey: .candidates) }
        if fields.relay { try c.encode(true, forKey: .relay) }
    }

    /// The mapping as the JSON stored in etcd (keys sorted, so equal mappings give equal bytes).
    public func json() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain strings, numbers and arrays cannot fail.
        return Array(try! encoder.encode(self))
    }

    /// Parses a mapping from stored JSON; the error says which field was wrong.
    public static func parse(json: [UInt8]) throws -> Mapping {
        try JSONDecoder().decode(Mapping.self, from: Data(json))
    }
}

extension Mapping: CustomReflectable {
    /// The fields, so that `print`, `dump` and test failures show them rather than the box.
    public var customMirror: Mirror {
        Mirror(self, children: Mirror(reflecting: box.fields).children, displayStyle: .struct)
    }
}

extension NetworkConfig {
    /// The configuration as the JSON stored in etcd.
    public func json() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try! encoder.encode(self))
    }

    /// Parses a configuration from stored JSON and validates it.
    public static func parse(json: [UInt8]) throws -> NetworkConfig {
        try JSONDecoder().decode(NetworkConfig.self, from: Data(json))
    }
}

/// Describes a decoding failure in one line: which field, and what was wrong with it.
public func describeDecodingError(_ error: any Error) -> String {
    guard let error = error as? DecodingError else { return "\(error)" }
    func path(_ context: DecodingError.Context) -> String {
        context.codingPath.map(\.stringValue).joined(separator: ".")
    }
    switch error {
    case .dataCorrupted(let context):
        let at = path(context)
        return at.isEmpty ? "not valid JSON" : "field '\(at)': \(context.debugDescription)"
    case .keyNotFound(let key, _): return "field '\(key.stringValue)' is missing"
    case .typeMismatch(_, let context): return "field '\(path(context))' has the wrong type"
    case .valueNotFound(_, let context): return "field '\(path(context))' is null"
    @unknown default: return "\(error)"
    }
}
