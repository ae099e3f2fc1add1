import Logging

/// Keeps a local view of every key under one prefix: a full listing, then a watch from the
/// revision after it, a fresh listing every `syncInterval` (in case a watch message was
/// missed), and on a datastore error one warning, a backoff (1 s doubling to 10 s), a new
/// listing and a new watch. The watch itself detects stalls (``EtcdClient``).
///
/// Used for the map of nodes and for the holders of floating IPs, so both recover the same way.
struct PrefixFollower: Sendable {
    let store: any Datastore
    let prefix: String
    let logger: Logger
    /// Names the view in the warning, e.g. "mapping sync".
    let name: String

    /// Runs until cancelled. `onListing` receives every key of each full listing (the whole
    /// view; it owns the listing, and may release it before it returns); `onEvents` the events
    /// of each watch message in between; `onFailure` each datastore error that broke the
    /// listing or the watch (before the backoff).
    func run(syncInterval: Duration, onListing: @escaping @Sendable (consuming [KeyValue]) -> Void,
             onEvents: @escaping @Sendable ([WatchEvent]) -> Void,
             onFailure: @escaping @Sendable (any Error) -> Void = { _ in }) async {
        var backoff = Duration.seconds(1)
        while !Task.isCancelled {
            do {
                let revision = try await listOnce(onListing: onListing)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await self.follow(from: revision + 1, onEvents: onEvents) }
                    group.addTask { try await Task.sleep(for: syncInterval) }
                    try await group.next()
                    group.cancelAll()
                }
                backoff = .seconds(1)
            } catch is CancellationError {
                return
            } catch {
                onFailure(error)
                if Task.isCancelled { return }
                logger.warning("\(name) failed; resyncing", metadata: ["retryIn": "\(backoff)", "error": "\(error)"])
                do { try await Task.sleep(for: backoff) } catch { return }
                backoff = min(backoff * 2, .seconds(10))
            }
        }
    }

    /// Lists the prefix and hands the listing on; returns its revision. The listing (the whole
    /// map: some 3 MB at 10,000 nodes) is gone when this returns, not kept while the watch runs.
    private func listOnce(onListing: @Sendable (consuming [KeyValue]) -> Void) async throws -> Int64 {
        let listing = try await store.list(prefix: prefix)
        onListing(listing.items)
        return listing.revision
    }

    /// Hands on watch messages until the watch fails (it never ends without an error).
    private func follow(from revision: Int64, onEvents: @Sendable ([WatchEvent]) -> Void) async throws {
        for try await events in store.watch(prefix: prefix, fromRevision: revision) {
            onEvents(events)
        }
        try Task.checkCancellation()
        throw DatastoreError.watchEnded(endpoint: "datastore", reason: "the watch stream finished")
    }
}
