/// One key and its value as stored in the datastore, with etcd's revision bookkeeping.
public struct KeyValue: Equatable, Sendable {
    /// The full key, e.g. `/quantum/nodes/10.99.0.1`.
    public var key: String
    /// The stored bytes.
    public var value: [UInt8]
    /// The store revision at which the key was created.
    public var createRevision: Int64
    /// The store revision of the last change to the key.
    public var modRevision: Int64
    /// The lease the key is bound to, 0 when none.
    public var lease: Int64

    public init(key: String, value: [UInt8], createRevision: Int64, modRevision: Int64, lease: Int64) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.lease = lease
    }
}

/// A change seen by a watch.
public enum WatchEvent: Equatable, Sendable {
    /// The key was created or updated.
    case put(KeyValue)
    /// The key was deleted (or its lease ended) at `revision`.
    case delete(key: String, revision: Int64)

    /// The store revision of the change.
    public var revision: Int64 {
        switch self {
        case .put(let item): return item.modRevision
        case .delete(_, let revision): return revision
        }
    }

    /// The key the event is about.
    public var key: String {
        switch self {
        case .put(let item): return item.key
        case .delete(let key, _): return key
        }
    }
}

/// The subset of etcd v3 that quantum needs (DESIGN.md §4), so that everything above
/// the datastore layer can run against ``InMemoryDatastore`` in tests.
public protocol Datastore: Sendable {
    /// The key's current value, or nil when absent.
    func get(_ key: String) async throws -> KeyValue?
    /// Every key starting with `prefix`, sorted by key, and the store revision they were read at.
    func list(prefix: String) async throws -> (items: [KeyValue], revision: Int64)
    /// Creates `key` only if it does not exist; false when it already exists.
    func create(_ key: String, value: [UInt8], lease: Int64?) async throws -> Bool
    /// Overwrites `key` only if its mod revision is still `ifModRevision`; false otherwise.
    func replace(_ key: String, value: [UInt8], ifModRevision: Int64, lease: Int64?) async throws -> Bool
    /// Writes `key` unconditionally.
    func put(_ key: String, value: [UInt8], lease: Int64?) async throws
    /// Deletes `key`; deleting an absent key is not an error.
    func delete(_ key: String) async throws
    /// Grants a lease that expires `ttlSeconds` after its last keep-alive; returns its ID.
    func grantLease(ttlSeconds: Int64) async throws -> Int64
    /// Refreshes a lease; returns its TTL in seconds, 0 when the lease is gone.
    func keepAlive(lease: Int64) async throws -> Int64
    /// Revokes a lease, deleting every key bound to it; revoking a gone lease is not an error.
    func revoke(lease: Int64) async throws
    /// Streams changes to keys under `prefix`, starting at `fromRevision` (inclusive).
    ///
    /// Each element carries the events of one watch message (one or more revisions, in order);
    /// it is never empty.
    ///
    /// The stream never finishes normally: it ends with an error when the connection drops,
    /// and with ``DatastoreError/compacted(requested:compactRevision:)`` when `fromRevision`
    /// is no longer available. Stop it by cancelling the consuming task.
    func watch(prefix: String, fromRevision: Int64) -> AsyncThrowingStream<[WatchEvent], any Error>
}

/// Why a datastore operation failed; the description names the endpoint, path or key involved.
public enum DatastoreError: Error, Equatable, CustomStringConvertible {
    /// No endpoint could be reached; one failure per endpoint tried.
    case unreachable([Failure])
    /// An endpoint answered with an HTTP error.
    case http(endpoint: String, path: String, status: Int, message: String)
    /// An endpoint answered with something that is not the expected JSON.
    case badResponse(endpoint: String, path: String, reason: String)
    /// Username/password authentication was refused.
    case authenticationFailed(endpoint: String, message: String)
    /// A key was written with a lease that does not exist (expired or revoked).
    case leaseNotFound(Int64)
    /// A watch asked for a revision that has been compacted away.
    case compacted(requested: Int64, compactRevision: Int64)
    /// A watch stream ended or was cancelled by the server.
    case watchEnded(endpoint: String, reason: String)
    /// The client configuration is unusable (e.g. an unreadable certificate file).
    case invalidConfiguration(String)

    /// One endpoint's connection failure.
    public struct Failure: Equatable, Sendable {
        /// The endpoint as configured.
        public var endpoint: String
        /// What went wrong, e.g. "connection refused".
        public var reason: String

        public init(endpoint: String, reason: String) {
            self.endpoint = endpoint
            self.reason = reason
        }
    }

    public var description: String {
        switch self {
        case .unreachable(let failures):
            if failures.isEmpty { return "etcd: no endpoints configured" }
            return failures.map { "etcd at \($0.endpoint): \($0.reason)" }.joined(separator: "; ")
        case .http(let endpoint, let path, let status, let message):
            return "etcd at \(endpoint) returned HTTP \(status) for \(path): \(message)"
        case .badResponse(let endpoint, let path, let reason):
            return "etcd at \(endpoint) sent an unexpected answer to \(path): \(reason)"
        case .authenticationFailed(let endpoint, let message):
            return "etcd at \(endpoint) refused the username/password: \(message)"
        case .leaseNotFound(let lease):
            return "etcd lease \(lease) does not exist (expired or revoked)"
        case .compacted(let requested, let compactRevision):
            return "etcd watch from revision \(requested) is impossible: history is compacted up to revision \(compactRevision)"
        case .watchEnded(let endpoint, let reason):
            return "etcd watch on \(endpoint) ended: \(reason)"
        case .invalidConfiguration(let message):
            return "etcd client configuration: \(message)"
        }
    }
}

/// The smallest key greater than every key starting with `prefix` (etcd's `range_end`).
/// The empty prefix, and a prefix of only 0xff bytes, mean "to the end of the key space" (`[0]`).
func prefixRangeEnd(_ prefix: [UInt8]) -> [UInt8] {
    var end = prefix
    while let last = end.last {
        if last < 0xff {
            end[end.count - 1] = last + 1
            return end
        }
        end.removeLast()
    }
    return [0]
}
