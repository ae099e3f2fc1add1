import Foundation

/// What every node publishes about itself at `<prefix>/nodes/<privateIP>` (DESIGN.md §4):
/// how to reach it and which key it speaks with.
public struct Mapping: Equatable, Sendable, Codable {
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
    /// At most `candidateLimit`; absent from the JSON when empty.
    public var candidates: [IPv4Endpoint] = []

    /// Most reflexive endpoints a mapping may carry.
    public static let candidateLimit = 4
    /// Whether the node forwards relay envelopes between other nodes (`--relay`); absent
    /// from the JSON when false, so older mappings decode and unchanged ones stay byte-equal.
    public var relay: Bool

    public init(machineID: String, privateIP: IPv4Address, ipv4: IPv4Address?, ipv6: IPv6Address?,
                port: UInt16, publicKey: [UInt8], plugins: [String] = [], floating: [IPv4Address] = [],
                gatewayIP: IPv4Address? = nil, certificate: String? = nil, relay: Bool = false) {
        self.machineID = machineID
        self.privateIP = privateIP
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.port = port
        self.publicKey = publicKey
        self.plugins = plugins
        self.floating = floating
        self.gatewayIP = gatewayIP
        self.certificate = certificate
        self.relay = relay
    }

    enum CodingKeys: String, CodingKey {
        case machineID, privateIP, ipv4, ipv6, port, publicKey, plugins, floating, gatewayIP, certificate
        case candidates
        case relay
    }

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
        machineID = try c.decode(String.self, forKey: .machineID)
        guard machineID.utf8.count == 32, machineID.utf8.allSatisfy({ UInt8(ascii: "0")...UInt8(ascii: "9") ~= $0
            || UInt8(ascii: "a")...UInt8(ascii: "f") ~= $0 || UInt8(ascii: "A")...UInt8(ascii: "F") ~= $0 }) else {
            throw bad(.machineID, "'\(machineID)' is not 32 hex digits")
        }
        guard let privateIP = try v4(.privateIP) else { throw bad(.privateIP, "missing") }
        self.privateIP = privateIP
        ipv4 = try v4(.ipv4)
        if let text = try c.decodeIfPresent(String.self, forKey: .ipv6), !text.isEmpty {
            guard let address = IPv6Address(text) else { throw bad(.ipv6, "'\(text)' is not an IPv6 address") }
            ipv6 = address
        } else {
            ipv6 = nil
        }
        guard ipv4 != nil || ipv6 != nil else { throw bad(.ipv4, "the mapping has neither ipv4 nor ipv6") }
        let port = try c.decode(Int.self, forKey: .port)
        guard (1...65535).contains(port) else { throw bad(.port, "\(port) is not a port number") }
        self.port = UInt16(port)
        let key = try c.decode(String.self, forKey: .publicKey)
        guard let keyBytes = Data(base64Encoded: key), keyBytes.count == 32 else {
            throw bad(.publicKey, "not a base64 32-byte Curve25519 key")
        }
        publicKey = Array(keyBytes)
        plugins = try c.decodeIfPresent([String].self, forKey: .plugins) ?? []
        floating = try (c.decodeIfPresent([String].self, forKey: .floating) ?? []).map {
            guard let address = IPv4Address($0) else { throw bad(.floating, "'\($0)' is not an IPv4 address") }
            return address
        }
        gatewayIP = try v4(.gatewayIP)
        certificate = try c.decodeIfPresent(String.self, forKey: .certificate)
        let candidates = try c.decodeIfPresent([String].self, forKey: .candidates) ?? []
        guard candidates.count <= Mapping.candidateLimit else {
            throw bad(.candidates, "\(candidates.count) candidates, at most \(Mapping.candidateLimit) allowed")
        }
        self.candidates = try candidates.map {
            guard let endpoint = IPv4Endpoint($0) else { throw bad(.candidates, "'\($0)' is not an IPv4 address:port") }
            return endpoint
        }
        relay = try c.decodeIfPresent(Bool.self, forKey: .relay) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(machineID, forKey: .machineID)
        try c.encode(privateIP.description, forKey: .privateIP)
        try c.encodeIfPresent(ipv4?.description, forKey: .ipv4)
        try c.encodeIfPresent(ipv6?.description, forKey: .ipv6)
        try c.encode(Int(port), forKey: .port)
        try c.encode(Data(publicKey).base64EncodedString(), forKey: .publicKey)
        try c.encode(plugins, forKey: .plugins)
        try c.encode(floating.map(\.description), forKey: .floating)
        try c.encodeIfPresent(gatewayIP?.description, forKey: .gatewayIP)
        try c.encodeIfPresent(certificate, forKey: .certificate)
        if !candidates.isEmpty { try c.encode(candidates.map(\.description), forKey: .candidates) }
        if relay { try c.encode(true, forKey: .relay) }
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
