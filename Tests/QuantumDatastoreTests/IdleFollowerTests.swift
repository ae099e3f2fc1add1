import QuantumCore
import QuantumDatastore
import Synchronization
import XCTest

/// A node without floating IP candidates only follows the holders: its election never reads
/// the clock (no renewal, no expiry check every 100 ms), so an idle node is not woken for it.
final class IdleFollowerTests: XCTestCase {
    func testAFollowerWithoutCandidatesSeesTheHoldersAndNeverRunsTimers() async throws {
        let store = InMemoryDatastore()
        let log = LogCapture()
        let floating = Fixtures.address("10.99.0.20")
        let holder = FloatingHolder(privateIP: Fixtures.address("10.99.0.33"), machineID: Fixtures.machineID(1))
        let lease = try await store.grantLease(ttlSeconds: 60)
        _ = try await store.create("/quantum/floating/\(floating)", value: holder.json(), lease: lease)

        let follower = FloatingIPElection(store: store, prefix: "/quantum", me: FloatingHolder(
            privateIP: Fixtures.address("10.99.0.34"), machineID: Fixtures.machineID(2)), candidates: [],
            ttlSeconds: 10, floatingRange: Fixtures.config.floatingRange, logger: log.logger)
        let clockReads = Atomic<Int>(0)
        let seen = Box<[[IPv4Address: IPv4Address]]>([])
        let running = Task {
            await follower.run(clock: { clockReads.add(1, ordering: .relaxed); return 0 }, syncInterval: .seconds(600)) { view in
                seen.update { $0.append(view) }
            }
        }
        defer { running.cancel() }
        try await eventually("the follower sees the holder") { seen.get().last == [floating: holder.privateIP] }
        // A holder that changes is followed too (the watch), still without a timer.
        try await store.revoke(lease: lease)
        try await eventually("the follower sees the address free") { seen.get().last == [:] }
        XCTAssertEqual(clockReads.load(ordering: .relaxed), 0, "a follower without candidates ran a timer")
        XCTAssertTrue(follower.held.isEmpty)
        running.cancel()
        await running.value
    }
}
