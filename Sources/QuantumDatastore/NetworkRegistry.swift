import Logging
import QuantumCore
import Synchronization

/// A private address this node holds in the datastore: `<prefix>/nodes/<address>`, bound to `id`.
public struct Lease: Equatable, Sendable {
    /// The claimed private address.
    public var address: IPv4Address
    /// The datastore lease the node key is bound to.
    public var id: Int64
    /// The full node key.
    public var key: String

    public init(address: IPv4Address, id: Int64, key: String) {
        self.address = address
        self.id = id
        self.key = key
    }
}

/// Why the registry refused or failed an operation; the description names the key or address.
public enum RegistryError: Error, Equatable, CustomStringConvertible {
    /// The stored network configuration does not parse; it is left untouched.
    case corruptConfig(key: String, problem: String)
    /// A `--private-ip` address outside the network, or its network/broadcast/floating addresses.
    case addressNotClaimable(IPv4Address, network: IPv4Prefix)
    /// The address is held by another machine.
    case addressHeld(IPv4Address, machineID: String)
    /// The address is held by a mapping that does not parse, so its owner is unknown.
    case addressHeldByUnreadableMapping(IPv4Address, key: String)
    /// The address this node held was taken by another machine while the node's lease was
    /// lost (etcd unreachable for longer than the lease time, or an operator's mistake).
    case addressLost(IPv4Address, machineID: String)
    /// The claim kept losing compare-and-set races.
    case contended(IPv4Address)
    /// Every address DHCP may hand out is taken.
    case networkFull(IPv4Prefix)

    public var description: String {
        switch self {
        case .corruptConfig(let key, let problem):
            return "the network configuration at \(key) is corrupt (\(problem)); fix or delete it"
        case .addressNotClaimable(let address, let network):
            return "\(address) cannot be claimed: it is outside network \(network), its first or last address, or a floating IP"
        case .addressHeld(let address, let machineID):
            return "\(address) is held by machine \(machineID)"
        case .addressHeldByUnreadableMapping(let address, let key):
            return "\(address) is held by an unreadable mapping at \(key)"
        case .addressLost(let address, let machineID):
            return "lost private address \(address): it is now held by machine \(machineID)"
        case .contended(let address):
            return "\(address) kept changing while being claimed; try again"
        case .networkFull(let network):
            return "no free address is left in network \(network)"
        }
    }
}

/// The quantum schema (DESIGN.md §4) on top of any ``Datastore``: the network configuration,
/// address claims with leases, keep-alive, and the locally cached map of all nodes.
public final class NetworkRegistry: Sendable {
    let store: any Datastore
    private let logger: Logger
    /// Versions (`key@modRevision`) of unusable node values already warned about, so each
    /// bad value is reported once, not at every resync.
    private let reportedBadValues = Mutex<Set<String>>([])
    /// Node values decoded by the mapping sync so far: a watch event decodes only its own
    /// values, a full listing every one (the tests' measure of work done per change).
    let decodedNodeValues = Atomic<Int>(0)
    /// The one map of nodes: what was last handed to the engine, per address.
    private let delivered = Mutex<[IPv4Address: Delivered]>([:])
    /// The key prefix, without a trailing slash (e.g. `/quantum`).
    public let prefix: String
    /// The registry's clock (monotonic, from any origin), injected so tests need not sleep.
    private let now: @Sendable () -> Duration
    /// Whether the map is followed, and when it last was brought up to date (`now()` time).
    private let syncState = Mutex<(watchConnected: Bool, lastSync: Duration?)>((false, nil))
    /// Whether a mapping held by another machine at the address this node claims may be
    /// overwritten (nil: the value does not parse). With a network CA: when the CA does not
    /// vouch for it, so a usurper cannot make the genuine node give its address up.
    private let isUsurper: @Sendable (Mapping?) -> Bool

    /// `prefix` is used as given, minus trailing slashes; `now` is the clock of ``syncStatus()``;
    /// `isUsurper` decides which foreign holders of a claimed address are overwritten (none by default).
    public init(store: any Datastore, prefix: String = "/quantum", logger: Logger,
                now: @escaping @Sendable () -> Duration = NetworkRegistry.monotonicNow,
                isUsurper: @escaping @Sendable (Mapping?) -> Bool = { _ in false }) {
        self.store = store
        self.now = now
        self.isUsurper = isUsurper
        var trimmed = prefix
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.prefix = trimmed
        self.logger = logger
    }

    /// `<prefix>/config`.
    public var configKey: String { "\(prefix)/config" }
    /// `<prefix>/nodes/`.
    public var nodesPrefix: String { "\(prefix)/nodes/" }
    /// `<prefix>/nodes/<address>`.
    public func nodeKey(_ address: IPv4Address) -> String { "\(nodesPrefix)\(address)" }

    // MARK: Configuration

    /// Stores `proposed` as the network configuration unless one exists; returns the one in force.
    ///
    /// A stored configuration always wins (with a warning when it differs from `proposed`);
    /// one that does not parse is reported, never overwritten.
    public func bootstrapConfig(proposed: NetworkConfig) async throws -> NetworkConfig {
        let key = configKey
        while true {
            if try await store.create(key, value: proposed.json(), lease: nil) {
                logger.info("stored the network configuration", metadata: ["key": "\(key)", "config": "\(describe(proposed))"])
                return proposed
            }
            // Deleted between the create and the get: try to create it again.
            guard let stored = try await store.get(key) else { continue }
            let config: NetworkConfig
            do {
                config = try NetworkConfig.parse(json: stored.value)
            } catch {
                throw RegistryError.corruptConfig(key: key, problem: describeDecodingError(error))
            }
            if config != proposed {
                logger.warning("the network configuration stored in etcd wins over this node's flags",
                               metadata: ["key": "\(key)", "stored": "\(describe(config))", "proposed": "\(describe(proposed))"])
            }
            return config
        }
    }

    private func describe(_ config: NetworkConfig) -> String {
        "network=\(config.network) staticRange=\(config.staticRange) floatingRange=\(config.floatingRange) "
            + "leaseTime=\(config.leaseTimeSeconds)s backend=\(config.backend)"
    }

    // MARK: Claims

    private enum ClaimOutcome {
        case claimed
        case held(RegistryError)
        case lostRace
    }

    /// One compare-and-set attempt on `address`: create it if absent, or replace it if it carries `machineID`.
    private func tryClaim(_ address: IPv4Address, value: [UInt8], machineID: String, lease: Int64) async throws -> ClaimOutcome {
        let key = nodeKey(address)
        guard let existing = try await store.get(key) else {
            return try await store.create(key, value: value, lease: lease) ? .claimed : .lostRace
        }
        let owner = try? Mapping.parse(json: existing.value)
        if owner?.machineID != machineID, isUsurper(owner) {
            logger.warning("overwriting a mapping the network CA does not vouch for at this node's address",
                           metadata: ["key": "\(key)", "machineID": "\(owner?.machineID ?? "unreadable")"])
        } else if let owner, owner.machineID != machineID {
            return .held(.addressHeld(address, machineID: owner.machineID))
        } else if owner == nil {
            return .held(.addressHeldByUnreadableMapping(address, key: key))
        }
        return try await store.replace(key, value: value, ifModRevision: existing.modRevision, lease: lease)
            ? .claimed : .lostRace
    }

    /// Claims a private address and publishes this node's mapping there, bound to a new lease
    /// of `config.leaseTimeSeconds`.
    ///
    /// With `address` (`--private-ip`) only that address is tried; it must be a static
    /// candidate and not held by another machine. Without it, DHCP: `preferred` first (the
    /// address this machine had last time), then any address already carrying `machineID`,
    /// then the lowest free dynamic address. Each attempt is a compare-and-set, so two nodes
    /// never get the same address; a lost race moves on to the next candidate.
    public func claim(address: IPv4Address?, mapping: (IPv4Address) -> Mapping, config: NetworkConfig,
                      machineID: String, preferred: IPv4Address?) async throws -> Lease {
        if let address, !config.isStaticCandidate(address) {
            throw RegistryError.addressNotClaimable(address, network: config.network)
        }
        let leaseID = try await store.grantLease(ttlSeconds: config.leaseTimeSeconds)
        do {
            let lease: Lease
            if let address {
                lease = try await claimStatic(address, mapping: mapping, machineID: machineID, leaseID: leaseID)
            } else {
                lease = try await claimDynamic(mapping: mapping, config: config, machineID: machineID,
                                               preferred: preferred, leaseID: leaseID)
            }
            logger.info("claimed private address", metadata: ["address": "\(lease.address)", "lease": "\(lease.id)"])
            return lease
        } catch {
            try? await store.revoke(lease: leaseID)
            throw error
        }
    }

    private func claimStatic(_ address: IPv4Address, mapping: (IPv4Address) -> Mapping,
                             machineID: String, leaseID: Int64) async throws -> Lease {
        let value = mapping(address).json()
        for _ in 0..<5 {
            switch try await tryClaim(address, value: value, machineID: machineID, lease: leaseID) {
            case .claimed: return Lease(address: address, id: leaseID, key: nodeKey(address))
            case .held(let error): throw error
            case .lostRace: continue
            }
        }
        throw RegistryError.contended(address)
    }

    private func claimDynamic(mapping: (IPv4Address) -> Mapping, config: NetworkConfig, machineID: String,
                              preferred: IPv4Address?, leaseID: Int64) async throws -> Lease {
        let (items, _) = try await store.list(prefix: nodesPrefix)
        var used = Set<IPv4Address>()
        var mine: [IPv4Address] = []
        // Only a value that contains the machine ID can carry it: the others (all of them
        // but this machine's, in a map of thousands) are not decoded.
        let machineIDBytes = Array(machineID.utf8)
        for item in items {
            guard let address = IPv4Address(item.key.dropFirst(nodesPrefix.count)) else { continue }
            used.insert(address)
            if item.value.contains(machineIDBytes), let owner = try? Mapping.parse(json: item.value), owner.machineID == machineID,
               config.isStaticCandidate(address) {
                mine.append(address)
            }
        }
        var first: [IPv4Address] = []
        if let preferred, mine.contains(preferred) || (config.isDynamicCandidate(preferred) && !used.contains(preferred)) {
            first.append(preferred)
        }
        first += mine.filter { $0 != preferred }
        var tried = Set<IPv4Address>()
        for address in first {
            tried.insert(address)
            if case .claimed = try await tryClaim(address, value: mapping(address).json(), machineID: machineID, lease: leaseID) {
                return Lease(address: address, id: leaseID, key: nodeKey(address))
            }
        }
        for address in config.dynamicCandidates(excluding: used.union(tried)) {
            if case .claimed = try await tryClaim(address, value: mapping(address).json(), machineID: machineID, lease: leaseID) {
                return Lease(address: address, id: leaseID, key: nodeKey(address))
            }
        }
        throw RegistryError.networkFull(config.network)
    }

    /// Revokes the lease, deleting the node key. The daemon does not call this on shutdown,
    /// so that a restart gets the same address back.
    public func release(lease: Lease) async throws {
        try await store.revoke(lease: lease.id)
    }

    /// Claims `address` again for the machine of `mapping`, bound to a new lease of
    /// `config.leaseTimeSeconds`: what a node that remembers its address does when etcd is
    /// back (after a lost lease, or a start from the local cache). Compare-and-set as in
    /// ``claim(address:mapping:config:machineID:preferred:)``; fails with
    /// ``RegistryError/addressLost(_:machineID:)`` when another machine holds the address.
    public func reclaim(_ address: IPv4Address, mapping: Mapping, config: NetworkConfig) async throws -> Lease {
        let newID = try await store.grantLease(ttlSeconds: config.leaseTimeSeconds)
        do {
            switch try await tryClaim(address, value: mapping.json(), machineID: mapping.machineID, lease: newID) {
            case .claimed:
                logger.info("claimed the address again", metadata: ["address": "\(address)", "lease": "\(newID)"])
                return Lease(address: address, id: newID, key: nodeKey(address))
            case .held(.addressHeld(_, let machineID)): throw RegistryError.addressLost(address, machineID: machineID)
            case .held(let error): throw error
            case .lostRace: throw RegistryError.contended(address)
            }
        } catch {
            try? await store.revoke(lease: newID)
            throw error
        }
    }

    // MARK: Keep-alive

    /// Keeps `lease` alive every `interval` until the task is cancelled (then it returns).
    ///
    /// When the lease is gone or the node key no longer carries it, the same address is
    /// claimed again with ``reclaim(_:mapping:config:)``; `onRenew` receives the new lease.
    /// When the network configuration key is absent (the prefix was wiped), `config` is
    /// stored again by create-if-absent. Datastore errors are logged in one line and retried
    /// with a backoff (1 s doubling up to `interval`, at most 30 s). Every wait goes through
    /// `sleep` (tests inject one to run the loop without waiting).
    ///
    /// - Throws: ``RegistryError/addressLost(_:machineID:)`` when another machine holds the
    ///   address: the node must stop rather than keep running under an address that is not its own.
    public func runKeepAlive(lease: Lease, mapping: Mapping, config: NetworkConfig, interval: Duration,
                             onRenew: @Sendable (Lease) -> Void = { _ in },
                             sleep: @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) })
        async throws(RegistryError) {
        var current = lease
        var backoff = Duration.seconds(1)
        while !Task.isCancelled {
            do {
                let ttl = try await store.keepAlive(lease: current.id)
                let stored = try await store.get(current.key)
                if ttl <= 0 || stored?.lease != current.id {
                    let why = ttl <= 0 ? "lease \(current.id) is gone"
                        : stored == nil ? "\(current.key) was deleted" : "\(current.key) changed"
                    logger.warning("lost the address lease; claiming the same address again",
                                   metadata: ["address": "\(current.address)", "reason": "\(why)"])
                    let renewed = try await reclaim(current.address, mapping: mapping, config: config)
                    // The old lease may be alive but no longer hold the key: let it go.
                    if ttl > 0 { try? await store.revoke(lease: current.id) }
                    current = renewed
                    onRenew(current)
                }
                try await restoreConfigIfMissing(config)
                backoff = .seconds(1)
                try await sleep(interval)
            } catch RegistryError.addressLost(let address, let machineID) {
                throw .addressLost(address, machineID: machineID)
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                logger.error("keep-alive of the address lease failed; retrying",
                             metadata: ["address": "\(current.address)", "retryIn": "\(backoff)", "error": "\(error)"])
                do { try await sleep(backoff) } catch { return }
                backoff = min(backoff * 2, max(.seconds(1), min(interval, .seconds(30))))
            }
        }
    }

    /// Stores `config` again (create-if-absent) when the configuration key is gone.
    private func restoreConfigIfMissing(_ config: NetworkConfig) async throws {
        guard try await store.get(configKey) == nil else { return }
        if try await store.create(configKey, value: config.json(), lease: nil) {
            logger.warning("the network configuration was missing; stored the one this node runs with again",
                           metadata: ["key": "\(configKey)", "config": "\(describe(config))"])
        }
    }

    // MARK: Mapping sync

    /// What was last handed to `onChange` for one address.
    private struct Delivered: Equatable {
        var mapping: Mapping
        var createRevision: Int64
    }

    /// How one node key/value reads: usable, or not (`address` is nil when the key names no address).
    private struct ParsedNode {
        var address: IPv4Address?
        var delivered: Delivered?
    }

    /// Parses one node key/value; an unusable value (with a warning naming the key, once per
    /// version) has no `delivered`.
    private func parseNode(_ item: KeyValue, network: IPv4Prefix) -> ParsedNode {
        let suffix = item.key.dropFirst(nodesPrefix.count)
        guard let address = IPv4Address(suffix) else {
            if firstReport(of: item) {
                logger.warning("skipping a node key that is not an IPv4 address", metadata: ["key": "\(item.key)"])
            }
            return ParsedNode(address: nil, delivered: nil)
        }
        let mapping: Mapping
        decodedNodeValues.add(1, ordering: .relaxed)
        do {
            mapping = try Mapping.parse(json: item.value)
        } catch {
            if firstReport(of: item) {
                logger.warning("skipping a mapping that does not parse",
                               metadata: ["key": "\(item.key)", "problem": "\(describeDecodingError(error))"])
            }
            return ParsedNode(address: address, delivered: nil)
        }
        guard mapping.privateIP == address else {
            if firstReport(of: item) {
                logger.warning("skipping a mapping whose privateIP differs from its key",
                               metadata: ["key": "\(item.key)", "privateIP": "\(mapping.privateIP)"])
            }
            return ParsedNode(address: address, delivered: nil)
        }
        guard network.contains(address) else {
            if firstReport(of: item) {
                logger.warning("skipping a mapping whose private IP is outside the network",
                               metadata: ["key": "\(item.key)", "network": "\(network)"])
            }
            return ParsedNode(address: address, delivered: nil)
        }
        return ParsedNode(address: address, delivered: Delivered(mapping: mapping, createRevision: item.createRevision))
    }

    /// True the first time this version of a bad value is seen. The memory is bounded:
    /// past `reportedBadValuesLimit` versions it starts afresh (and repeats warnings).
    private func firstReport(of item: KeyValue) -> Bool {
        reportedBadValues.withLock { reported in
            if reported.count >= Self.reportedBadValuesLimit { reported.removeAll() }
            return reported.insert("\(item.key)@\(item.modRevision)").inserted
        }
    }

    private static let reportedBadValuesLimit = 4096

    /// The mappings last handed to the engine, one per address (for the local cache).
    public func deliveredMappings() -> [MappingUpdate] {
        delivered.withLock { delivered in
            delivered.map { MappingUpdate(address: $0.key, mapping: $0.value.mapping, createRevision: $0.value.createRevision) }
        }
    }

    // MARK: Sync state

    /// Where ``monotonicNow()`` counts from.
    private static let origin = ContinuousClock.now

    /// The default clock: `ContinuousClock` time since the first use.
    public static func monotonicNow() -> Duration { ContinuousClock.now - origin }

    /// How the map follows the datastore, for operators.
    public struct SyncStatus: Sendable, Equatable {
        /// True from a successful listing while its watch runs; false before, and from an error until the next listing.
        public var watchConnected: Bool
        /// Time since the last successful listing or watch message; nil before the first.
        public var lastSyncAge: Duration?

        public init(watchConnected: Bool, lastSyncAge: Duration?) {
            self.watchConnected = watchConnected
            self.lastSyncAge = lastSyncAge
        }
    }

    /// Whether ``runMappingSync(config:syncInterval:alreadyDelivered:onChange:)`` is connected and how
    /// fresh its map is (thread-safe). A healthy node's age stays below the sync interval on a quiet map.
    public func syncStatus() -> SyncStatus {
        let (connected, last) = syncState.withLock { $0 }
        return SyncStatus(watchConnected: connected, lastSyncAge: last.map { max(now() - $0, .zero) })
    }

    private func markSynced() {
        let time = now()
        syncState.withLock { $0 = (true, time) }
    }

    private func markDisconnected() {
        syncState.withLock { $0.watchConnected = false }
    }

    /// Follows the map of nodes and hands `onChange` only what changed.
    ///
    /// Lists `<prefix>/nodes/`, then watches from the next revision. Each call of `onChange`
    /// carries the changes of one watch message, or of one full listing (the difference from
    /// what was delivered before; a key gone or no longer usable is a deletion, `mapping: nil`).
    /// A mapping that does not parse, whose privateIP differs from its key, or whose address
    /// lies outside `config.network` is skipped with one warning per version naming the key.
    /// Every `syncInterval` the map is listed afresh. On a datastore error it logs one line,
    /// backs off (1 s doubling to 10 s), lists again and re-watches. Runs until cancelled;
    /// run it once per registry.
    ///
    /// - Parameter alreadyDelivered: mappings the engine already has (from the local cache), so
    ///   that the first listing reports only the differences, deletions included.
    public func runMappingSync(config: NetworkConfig, syncInterval: Duration, alreadyDelivered: [MappingUpdate] = [],
                               onChange: @escaping @Sendable ([MappingUpdate]) -> Void) async {
        delivered.withLock { delivered in
            for update in alreadyDelivered {
                delivered[update.address] = update.mapping.map { Delivered(mapping: $0, createRevision: update.createRevision) }
            }
        }
        let network = config.network
        defer { markDisconnected() }
        await PrefixFollower(store: store, prefix: nodesPrefix, logger: logger, name: "mapping sync").run(
            syncInterval: syncInterval,
            onListing: { [self] (items: consuming [KeyValue]) in
                resync(items, network: network, onChange: onChange)
                markSynced()
            },
            onEvents: { [self] events in
                markSynced()
                apply(events, network: network, onChange: onChange)
            },
            onFailure: { [self] _ in markDisconnected() })
    }

    /// Brings the delivered map up to date with a full listing of the nodes and reports the
    /// differences. Unchanged entries are kept, not replaced by their freshly parsed equals, so
    /// their mappings stay shared with the engine's copies. The listing (some 3 MB at 10,000
    /// nodes) is released once parsed, before the engine builds its peers from the differences.
    func resync(_ items: consuming [KeyValue], network: IPv4Prefix, onChange: @Sendable ([MappingUpdate]) -> Void) {
        var fresh: [IPv4Address: Delivered] = [:]
        fresh.reserveCapacity(items.count)
        for index in items.indices {
            let parsed = parseNode(items[index], network: network)
            if let address = parsed.address, let entry = parsed.delivered { fresh[address] = entry }
        }
        _ = consume items
        let updates = delivered.withLock { delivered in
            let vanished = delivered.keys.filter { fresh[$0] == nil }
            var updates: [MappingUpdate] = []
            for (address, entry) in fresh where delivered[address] != entry {
                updates.append(MappingUpdate(address: address, mapping: entry.mapping, createRevision: entry.createRevision))
                delivered[address] = entry
            }
            for address in vanished {
                updates.append(MappingUpdate(address: address, mapping: nil, createRevision: 0))
                delivered[address] = nil
            }
            return updates
        }
        if !updates.isEmpty { onChange(updates) }
    }

    /// Applies one watch message to the delivered map and reports what changed.
    func apply(_ events: [WatchEvent], network: IPv4Prefix, onChange: @Sendable ([MappingUpdate]) -> Void) {
        let changes: [ParsedNode] = events.map { event in
            switch event {
            case .put(let item):
                return parseNode(item, network: network)
            case .delete(let key, _):
                return ParsedNode(address: IPv4Address(key.dropFirst(nodesPrefix.count)), delivered: nil)
            }
        }
        let updates = delivered.withLock { delivered in
            var updates: [MappingUpdate] = []
            for change in changes {
                guard let address = change.address, delivered[address] != change.delivered else { continue }
                delivered[address] = change.delivered
                updates.append(MappingUpdate(address: address, mapping: change.delivered?.mapping,
                                             createRevision: change.delivered?.createRevision ?? 0))
            }
            return updates
        }
        if !updates.isEmpty { onChange(updates) }
    }
}
