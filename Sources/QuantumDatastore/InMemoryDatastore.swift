import Synchronization

/// A complete in-process ``Datastore`` with etcd's semantics: one global revision counter,
/// create/mod revisions, create-if-absent and mod-revision compare-and-set, leases whose
/// keys vanish when they expire, history, compaction and prefix watches.
///
/// Lease expiry is evaluated on demand, at the start of every operation, so an expired
/// lease's keys disappear (and watchers see the deletes) the next time anyone touches
/// the store. History is kept until ``compact(revision:)``, which suits tests, not long runs.
public final class InMemoryDatastore: Datastore {
    private struct LeaseState {
        var ttl: Int64
        var deadline: ContinuousClock.Instant
    }

    private struct Watcher {
        var prefix: String
        var continuation: AsyncThrowingStream<[WatchEvent], any Error>.Continuation
    }

    private struct State {
        var revision: Int64 = 1
        var compactRevision: Int64 = 0
        var listings = 0
        var keys: [String: KeyValue] = [:]
        var leases: [Int64: LeaseState] = [:]
        var nextLeaseID: Int64 = 0x1000
        var history: [(revision: Int64, events: [WatchEvent])] = []
        var watchers: [Int: Watcher] = [:]
        var nextWatcherID = 0

        /// Records the events of one revision and sends each watcher those under its prefix, as one message.
        mutating func publish(_ events: [WatchEvent]) {
            history.append((revision, events))
            for watcher in watchers.values {
                let matching = events.filter { $0.key.hasPrefix(watcher.prefix) }
                if !matching.isEmpty { watcher.continuation.yield(matching) }
            }
        }

        /// Deletes every key of every lease whose deadline has passed; one revision per lease.
        mutating func expireLeases(now: ContinuousClock.Instant) {
            for (id, lease) in leases.sorted(by: { $0.key < $1.key }) where lease.deadline <= now {
                removeLease(id)
            }
        }

        mutating func removeLease(_ id: Int64) {
            leases[id] = nil
            let doomed = keys.values.filter { $0.lease == id }.map(\.key).sorted()
            guard !doomed.isEmpty else { return }
            revision += 1
            for key in doomed { keys[key] = nil }
            publish(doomed.map { .delete(key: $0, revision: revision) })
        }

        mutating func write(_ key: String, value: [UInt8], lease: Int64?) throws {
            let leaseID = lease ?? 0
            if leaseID != 0, leases[leaseID] == nil { throw DatastoreError.leaseNotFound(leaseID) }
            revision += 1
            let created = keys[key]?.createRevision ?? revision
            let kv = KeyValue(key: key, value: value, createRevision: created, modRevision: revision, lease: leaseID)
            keys[key] = kv
            publish([.put(kv)])
        }
    }

    private let state = Mutex(State())

    /// An empty store at revision 1, like a fresh etcd.
    public init() {}

    private func withState<T>(_ body: (inout State) throws -> T) rethrows -> T {
        let now = ContinuousClock.now
        return try state.withLock { state in
            state.expireLeases(now: now)
            return try body(&state)
        }
    }

    public func get(_ key: String) async throws -> KeyValue? {
        withState { $0.keys[key] }
    }

    public func list(prefix: String) async throws -> (items: [KeyValue], revision: Int64) {
        withState { state in
            state.listings += 1
            return (state.keys.values.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }, state.revision)
        }
    }

    /// How many listings (`list`) the store has answered, so tests can wait for a resync.
    public var listings: Int { state.withLock { $0.listings } }

    public func create(_ key: String, value: [UInt8], lease: Int64?) async throws -> Bool {
        try withState { state in
            guard state.keys[key] == nil else { return false }
            try state.write(key, value: value, lease: lease)
            return true
        }
    }

    public func replace(_ key: String, value: [UInt8], ifModRevision: Int64, lease: Int64?) async throws -> Bool {
        try withState { state in
            // etcd compares an absent key's mod_revision as 0.
            guard (state.keys[key]?.modRevision ?? 0) == ifModRevision else { return false }
            try state.write(key, value: value, lease: lease)
            return true
        }
    }

    public func put(_ key: String, value: [UInt8], lease: Int64?) async throws {
        try withState { try $0.write(key, value: value, lease: lease) }
    }

    public func delete(_ key: String) async throws {
        withState { state in
            guard state.keys[key] != nil else { return }
            state.revision += 1
            state.keys[key] = nil
            state.publish([.delete(key: key, revision: state.revision)])
        }
    }

    public func grantLease(ttlSeconds: Int64) async throws -> Int64 {
        let now = ContinuousClock.now
        return withState { state in
            state.nextLeaseID += 1
            state.leases[state.nextLeaseID] = LeaseState(ttl: ttlSeconds, deadline: now + .seconds(ttlSeconds))
            return state.nextLeaseID
        }
    }

    public func keepAlive(lease: Int64) async throws -> Int64 {
        let now = ContinuousClock.now
        return withState { state in
            guard var current = state.leases[lease] else { return 0 }
            current.deadline = now + .seconds(current.ttl)
            state.leases[lease] = current
            return current.ttl
        }
    }

    public func revoke(lease: Int64) async throws {
        withState { $0.removeLease(lease) }
    }

    public func watch(prefix: String, fromRevision: Int64) -> AsyncThrowingStream<[WatchEvent], any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: [WatchEvent].self, throwing: (any Error).self)
        let id: Int? = withState { state in
            if fromRevision > 0, fromRevision < state.compactRevision {
                continuation.finish(throwing: DatastoreError.compacted(
                    requested: fromRevision, compactRevision: state.compactRevision))
                return nil
            }
            for (revision, events) in state.history where revision >= fromRevision {
                let matching = events.filter { $0.key.hasPrefix(prefix) }
                if !matching.isEmpty { continuation.yield(matching) }
            }
            state.nextWatcherID += 1
            state.watchers[state.nextWatcherID] = Watcher(prefix: prefix, continuation: continuation)
            return state.nextWatcherID
        }
        if let id {
            continuation.onTermination = { [weak self] _ in
                _ = self?.state.withLock { $0.watchers.removeValue(forKey: id) }
            }
        }
        return stream
    }

    /// Forgets history before `revision`, as etcd's compaction does: watches from an
    /// earlier revision then fail with ``DatastoreError/compacted(requested:compactRevision:)``.
    public func compact(revision: Int64) {
        withState { state in
            state.compactRevision = max(state.compactRevision, revision)
            state.history.removeAll { $0.revision < state.compactRevision }
        }
    }

    /// How many watches are open, so tests can wait for a watch to be (re-)established.
    public var watcherCount: Int { state.withLock { $0.watchers.count } }

    /// Ends every open watch with ``DatastoreError/watchEnded(endpoint:reason:)``, as a
    /// dropped etcd connection would.
    public func dropWatches(reason: String) {
        let watchers = withState { state in
            defer { state.watchers = [:] }
            return Array(state.watchers.values)
        }
        for watcher in watchers {
            watcher.continuation.finish(throwing: DatastoreError.watchEnded(endpoint: "memory", reason: reason))
        }
    }

    /// The current store revision.
    public var revision: Int64 {
        withState { $0.revision }
    }
}
