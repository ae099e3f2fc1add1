/// The definition of one quantum network, stored once at `<prefix>/config` (DESIGN.md §4).
///
/// The first node creates it from its own flags; every later node reads and obeys it.
public struct NetworkConfig: Equatable, Sendable, Codable {
    /// The whole private network, e.g. `10.99.0.0/16`.
    public var network: IPv4Prefix
    /// Addresses reserved for `--private-ip` claims; never handed out by DHCP.
    public var staticRange: IPv4Prefix
    /// Addresses reserved for floating IPs; never handed out by DHCP.
    public var floatingRange: IPv4Prefix
    /// How long a node's address lease lasts without keep-alive, in seconds.
    public var leaseTimeSeconds: Int64
    /// The data-path backend; only `udp` exists.
    public var backend: String

    /// Why a configuration is refused.
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    public init(network: IPv4Prefix, staticRange: IPv4Prefix, floatingRange: IPv4Prefix,
                leaseTimeSeconds: Int64, backend: String = "udp") throws {
        self.network = network
        self.staticRange = staticRange
        self.floatingRange = floatingRange
        self.leaseTimeSeconds = leaseTimeSeconds
        self.backend = backend
        try validate()
    }

    /// Checks the invariants every node relies on.
    public func validate() throws {
        guard network.length <= 30 else {
            throw Invalid(description: "network \(network) is too small: use a prefix of /30 or shorter")
        }
        guard network.contains(staticRange) else {
            throw Invalid(description: "static range \(staticRange) is not inside network \(network)")
        }
        guard network.contains(floatingRange) else {
            throw Invalid(description: "floating range \(floatingRange) is not inside network \(network)")
        }
        guard !staticRange.overlaps(floatingRange) else {
            throw Invalid(description: "static range \(staticRange) overlaps floating range \(floatingRange)")
        }
        guard leaseTimeSeconds >= 10 else {
            throw Invalid(description: "lease time \(leaseTimeSeconds)s is too short: use at least 10s")
        }
        guard backend == "udp" else {
            throw Invalid(description: "backend '\(backend)' is unknown: expected 'udp'")
        }
    }

    enum CodingKeys: String, CodingKey {
        case network, staticRange, floatingRange, leaseTime, backend
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func prefix(_ key: CodingKeys) throws -> IPv4Prefix {
            let text = try container.decode(String.self, forKey: key)
            do { return try IPv4Prefix(parsing: text) } catch {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "\(error)")
            }
        }
        try self.init(
            network: prefix(.network), staticRange: prefix(.staticRange), floatingRange: prefix(.floatingRange),
            leaseTimeSeconds: container.decode(Int64.self, forKey: .leaseTime),
            backend: container.decodeIfPresent(String.self, forKey: .backend) ?? "udp")
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(network.description, forKey: .network)
        try container.encode(staticRange.description, forKey: .staticRange)
        try container.encode(floatingRange.description, forKey: .floatingRange)
        try container.encode(leaseTimeSeconds, forKey: .leaseTime)
        try container.encode(backend, forKey: .backend)
    }

    /// True when DHCP may hand out `address`: inside the network, not its first or last
    /// address, and outside the static and floating ranges.
    public func isDynamicCandidate(_ address: IPv4Address) -> Bool {
        network.contains(address) && address != network.network && address != network.last
            && !staticRange.contains(address) && !floatingRange.contains(address)
    }

    /// True when `--private-ip` may claim `address`: inside the network, not its first or
    /// last address, and not a floating IP.
    public func isStaticCandidate(_ address: IPv4Address) -> Bool {
        network.contains(address) && address != network.network && address != network.last
            && !floatingRange.contains(address)
    }

    /// Why `address` cannot be a floating IP of this network, or nil when it can: it must lie
    /// inside the network and its floating range, and not be the network's first or last address.
    public func floatingIPProblem(_ address: IPv4Address) -> String? {
        if !network.contains(address) { return "is outside the network \(network)" }
        if !floatingRange.contains(address) { return "is outside the floating range \(floatingRange)" }
        if address == network.network || address == network.last { return "is the first or last address of network \(network)" }
        return nil
    }

    /// Addresses DHCP may hand out, lowest first, skipping those in `used`.
    public func dynamicCandidates(excluding used: Set<IPv4Address>) -> some Sequence<IPv4Address> {
        let first = network.network.value &+ 1
        let last = network.last.value &- 1
        return (first...last).lazy.map(IPv4Address.init).filter { isDynamicCandidate($0) && !used.contains($0) }
    }
}
