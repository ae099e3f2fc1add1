import QuantumCore
import QuantumDatastore
import XCTest

/// The registry's sync state, read by the stats endpoint: connected while the watch runs,
/// and the age of the last listing or watch message on the registry's injected clock.
final class SyncStatusTests: XCTestCase {
    let store = InMemoryDatastore()
    let log = LogCapture()

    func testSyncStatusFollowsListingsWatchMessagesAndFailures() async throws {
        let clock = Box<Duration>(.seconds(1000))
        let registry = NetworkRegistry(store: store, prefix: "/quantum", logger: log.logger, now: { clock.get() })
        XCTAssertEqual(registry.syncStatus(), .init(watchConnected: false, lastSyncAge: nil), "nothing synced yet")
        let config = Fixtures.config
        let task = Task {
            await registry.runMappingSync(config: config, syncInterval: .seconds(3600)) { _ in }
        }
        defer { task.cancel() }
        try await eventually("first listing") { registry.syncStatus().watchConnected }
        XCTAssertEqual(registry.syncStatus().lastSyncAge, .zero)

        // Time passes on the injected clock alone: minutes in no time.
        clock.update { $0 += .seconds(90) }
        XCTAssertEqual(registry.syncStatus(), .init(watchConnected: true, lastSyncAge: .seconds(90)))

        // A watch message is a sync.
        _ = try await registry.claim(address: nil, mapping: Fixtures.mapping(machine: 1), config: config,
                                     machineID: Fixtures.machineID(1), preferred: nil)
        try await eventually("watch message") { registry.syncStatus().lastSyncAge == .zero }

        // The watch fails: disconnected until the next listing, and the age keeps growing.
        store.dropWatches(reason: "simulated connection loss")
        try await eventually("disconnected") { !registry.syncStatus().watchConnected }
        clock.update { $0 += .seconds(5) }
        XCTAssertEqual(registry.syncStatus().lastSyncAge, .seconds(5))
        try await eventually("listed again after the backoff") {
            registry.syncStatus() == .init(watchConnected: true, lastSyncAge: .zero)
        }

        task.cancel()
        await task.value
        XCTAssertFalse(registry.syncStatus().watchConnected, "a stopped sync is not connected")
    }
}
