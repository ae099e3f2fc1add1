import Logging

extension NetworkRegistry {
    /// `<prefix>/revocations`: the network CA's revocation list (signed, so whoever writes
    /// it need not be trusted; nodes check the signature and ignore older serials).
    public var revocationsKey: String { "\(prefix)/revocations" }
}

/// Follows one key (the revocation list) the way the map of nodes is followed: a read, a
/// watch, a fresh read every sync interval, a backoff after errors. Hands on its value
/// whenever it may have changed; the receiver ignores repeats.
public struct RevocationsFollower: Sendable {
    let store: any Datastore
    let key: String
    let logger: Logger

    public init(store: any Datastore, key: String, logger: Logger) {
        self.store = store
        self.key = key
        self.logger = logger
    }

    /// Runs until cancelled; `onValue` receives the key's value each time it is read or written.
    public func run(syncInterval: Duration, onValue: @escaping @Sendable ([UInt8]) -> Void) async {
        let key = key
        await PrefixFollower(store: store, prefix: key, logger: logger, name: "revocation list sync").run(
            syncInterval: syncInterval,
            onListing: { (items: consuming [KeyValue]) in
                if let item = items.first(where: { $0.key == key }) { onValue(item.value) }
            },
            onEvents: { events in
                for case .put(let item) in events where item.key == key { onValue(item.value) }
            })
    }
}
