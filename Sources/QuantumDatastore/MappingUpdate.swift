import QuantumCore

/// One change to the network's map of nodes, as the registry hands it to the engine:
/// a node key now carries `mapping`, or (with `mapping == nil`) no longer carries a
/// usable one (deleted, expired, or replaced by a value that does not parse).
///
/// The registry sends changes, never whole maps: the first delivery after start-up
/// (or after a full resync) carries only what differs from what was delivered before.
public struct MappingUpdate: Equatable, Sendable {
    /// The private address the node key names.
    public var address: IPv4Address
    /// The mapping now stored there, or nil when there is none.
    public var mapping: Mapping?
    /// The store revision at which the key was created (0 when `mapping` is nil).
    /// When two mappings carry the same public key, the one created later owns it.
    public var createRevision: Int64

    public init(address: IPv4Address, mapping: Mapping?, createRevision: Int64) {
        self.address = address
        self.mapping = mapping
        self.createRevision = createRevision
    }
}
