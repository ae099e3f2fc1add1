import QuantumCore
import QuantumDatastore
import Synchronization
import XCTest

/// The floating IP election on the in-memory store, driven with explicit times (no sleeps:
/// a TTL of 10 s is checked at its edges in microseconds).
final class FloatingIPElectionTests: XCTestCase {
    let inner = InMemoryDatastore()
    lazy var store = SeverableStore(inner: inner)
    let log = LogCapture()
    let floating = Fixtures.address("10.99.0.20")
    let second = Fixtures.address("10.99.0.21")
    let seconds: UInt64 = 1_000_000_000

    func election(_ machine: Int, candidates: [IPv4Address]? = nil, ttl: Int64 = 10) -> FloatingIPElection {
        FloatingIPElection(store: store, prefix: "/quantum/", me: holder(machine),
                           candidates: candidates ?? [floating], ttlSeconds: ttl,
                           floatingRange: Fixtures.config.floatingRange, logger: log.logger)
    }

    func holder(_ machine: Int) -> FloatingHolder {
        FloatingHolder(privateIP: IPv4Address(UInt32(0x0A63_0020 + machine)), machineID: Fixtures.machineID(machine))
    }

    func storedHolder(_ address: IPv4Address) async throws -> FloatingHolder? {
        try await inner.get("/quantum/floating/\(address)").flatMap { FloatingHolder.parse(json: $0.value) }
    }

    @discardableResult
    func sync(_ elections: FloatingIPElection...) async throws -> [Bool] {
        let (items, _) = try await inner.list(prefix: "/quantum/floating/")
        return elections.map { $0.observe(listing: items) }
    }

    func testHolderJSONRoundTripsAndGarbageIsRefused() {
        XCTAssertEqual(FloatingHolder.parse(json: holder(1).json()), holder(1))
        XCTAssertNil(FloatingHolder.parse(json: Array(#"{"privateIP":"10.99.0.300","machineID":"x"}"#.utf8)))
        XCTAssertNil(FloatingHolder.parse(json: Array("not json".utf8)))
    }

    func testFirstCandidateTakesTheAddressAndTheOtherFollows() async throws {
        let a = election(1), b = election(2)
        await a.contend(now: 0)
        XCTAssertEqual(a.held, [floating])
        let stored = try await inner.get("/quantum/floating/\(floating)")
        XCTAssertNotEqual(stored?.lease, 0, "the key must be bound to a lease")
        let holderOne = try await storedHolder(floating)
        XCTAssertEqual(holderOne, holder(1))

        let free = try await sync(b)
        XCTAssertEqual(free, [false], "a held address is not free")
        await b.contend(now: 0)
        XCTAssertEqual(b.held, [])
        XCTAssertEqual(b.holders(), [floating: holder(1).privateIP])
        XCTAssertEqual(a.holders(), [floating: holder(1).privateIP])
    }

    func testConcurrentCandidatesNeverMakeTwoHolders() async throws {
        let elections = (1...12).map { election($0, candidates: [floating, second]) }
        await withTaskGroup(of: Void.self) { group in
            for election in elections { group.addTask { await election.contend(now: 0) } }
        }
        XCTAssertEqual(elections.filter { $0.held.contains(floating) }.count, 1)
        XCTAssertEqual(elections.filter { $0.held.contains(second) }.count, 1)
    }

    func testWhenTheHolderDiesAFollowingCandidateTakesOverAtOnce() async throws {
        // A TTL of 60 s: b's own timer would contend only every 10 s, so only the watch
        // can make it take over within the bound below.
        let a = election(1, ttl: 60), b = election(2, ttl: 60)
        await a.contend(now: 0)
        let seen = Box<[[IPv4Address: IPv4Address]]>([])
        let running = Task { await b.run(clock: { 0 }, syncInterval: .seconds(600)) { view in seen.update { $0.append(view) } } }
        defer { running.cancel() }
        try await eventually("b sees a as holder") { seen.get().last == [floating: holder(1).privateIP] }

        // a is killed: etcd lets its lease run out, which deletes the key.
        let stored = try await inner.get("/quantum/floating/\(floating)")
        try await inner.revoke(lease: try XCTUnwrap(stored).lease)
        try await eventually("b takes over", timeout: .seconds(2)) { b.held == [floating] }
        let newHolder = try await storedHolder(floating)
        XCTAssertEqual(newHolder, holder(2))
        XCTAssertEqual(seen.get().last, [floating: holder(2).privateIP])
        running.cancel()
        await running.value
    }

    func testCleanReleaseDeletesTheKeyAtOnce() async throws {
        let a = election(1)
        await a.contend(now: 0)
        XCTAssertEqual(a.held, [floating])
        await a.release()
        XCTAssertEqual(a.held, [])
        let stored = try await inner.get("/quantum/floating/\(floating)")
        XCTAssertNil(stored)
        XCTAssertEqual(log.matching(.info, "released floating IPs", "\(floating)").count, 1)
    }

    func testHolderRenewsEveryThirdOfTheTTLAndSoKeepsHolding() async throws {
        let a = election(1)
        await a.contend(now: 0)
        await a.contend(now: a.renewalInterval - 1)
        XCTAssertEqual(store.keepAlives, 0, "no renewal before a third of the TTL")
        await a.contend(now: a.renewalInterval)
        XCTAssertEqual(store.keepAlives, 1)
        XCTAssertFalse(a.expire(now: a.renewalInterval + a.holdLimit - 1), "the renewal moved the deadline")
        XCTAssertEqual(a.held, [floating])
    }

    func testASuccessorAdoptsTheHoldingsAndRenewsThePredecessorsLease() async throws {
        let predecessor = election(1), other = election(2)
        await predecessor.contend(now: 0)
        await predecessor.contend(now: predecessor.renewalInterval)
        try await sync(predecessor, other)
        let stored = try await inner.get("/quantum/floating/\(floating)")
        let lease = try XCTUnwrap(stored).lease
        let handed = predecessor.handover()
        XCTAssertEqual(handed.lease, lease)
        XCTAssertEqual(handed.lastRenewal, predecessor.renewalInterval)

        // The successor: same machine, a new process; it never asks for a lease of its own.
        let successor = election(1)
        successor.adopt(handed)
        XCTAssertEqual(successor.held, [floating], "held from the first moment, before any datastore round")
        XCTAssertEqual(successor.holders(), [floating: holder(1).privateIP])
        let granted = store.grants
        await successor.contend(now: predecessor.renewalInterval * 2)
        XCTAssertEqual(store.grants, granted, "no new lease: the predecessor's is renewed")
        XCTAssertEqual(successor.held, [floating])
        let renewed = try await inner.get("/quantum/floating/\(floating)")
        XCTAssertEqual(renewed?.lease, lease)
        await other.contend(now: predecessor.renewalInterval * 2)
        XCTAssertEqual(other.held, [], "the other candidate never gets it")

        // The hold still ends where etcd's deadline requires: from the last renewal handed
        // over, not from the successor's start.
        let cutOff = election(1)
        cutOff.adopt(handed)
        store.cut(true)
        XCTAssertFalse(cutOff.expire(now: handed.lastRenewal + cutOff.holdLimit - 1))
        XCTAssertTrue(cutOff.expire(now: handed.lastRenewal + cutOff.holdLimit))
        store.cut(false)
    }

    func testCutOffHolderGivesUpBeforeItsLeaseRunsOutAndCompetesAgainLater() async throws {
        let a = election(1)
        await a.contend(now: 0)
        XCTAssertLessThan(a.holdLimit, a.ttl)
        XCTAssertEqual(a.holdLimit, 9 * seconds, "TTL 10 s minus a 1 s margin")

        store.cut(true)
        await a.contend(now: a.renewalInterval)
        XCTAssertEqual(a.held, [floating], "one failed renewal is not yet a reason to give up")
        XCTAssertEqual(log.matching(.warning, "floating IP election failed").count, 1)
        XCTAssertFalse(a.expire(now: a.holdLimit - 1))
        XCTAssertEqual(a.holders(), [floating: holder(1).privateIP])
        XCTAssertTrue(a.expire(now: a.holdLimit))
        XCTAssertEqual(a.held, [])
        XCTAssertEqual(a.holders(), [:], "a key still naming this node does not count once given up")
        XCTAssertEqual(log.matching(.error, "giving up", "\(floating)").count, 1)

        // etcd back while the lease still lives there: the key is still ours.
        store.cut(false)
        try await sync(a)
        await a.contend(now: a.holdLimit + 1)
        XCTAssertEqual(a.held, [floating])

        // Cut off again for longer than the TTL: etcd drops the lease and the key.
        store.cut(true)
        XCTAssertTrue(a.expire(now: 2 * a.holdLimit + 2))
        let stored = try await inner.get("/quantum/floating/\(floating)")
        let lease = try XCTUnwrap(stored).lease
        try await inner.revoke(lease: lease)
        store.cut(false)
        try await sync(a)
        await a.contend(now: 3 * a.ttl)
        XCTAssertEqual(a.held, [floating], "competes again with a new lease")
        let renewed = try await inner.get("/quantum/floating/\(floating)")
        XCTAssertNotEqual(renewed?.lease, lease)
        XCTAssertEqual(log.matching(.warning, "lease is gone").count, 1)
    }

    func testAnUnreadableHolderCountsAsTakenAndForeignKeysAreSkipped() async throws {
        try await inner.put("/quantum/floating/\(floating)", value: Array("garbage".utf8), lease: nil)
        try await inner.put("/quantum/floating/10.1.2.3", value: holder(3).json(), lease: nil)
        let b = election(2)
        let free = try await sync(b)
        XCTAssertEqual(free, [false])
        await b.contend(now: 0)
        XCTAssertEqual(b.held, [])
        XCTAssertEqual(b.holders(), [:])
        XCTAssertEqual(log.matching(.warning, "counts as taken", "/quantum/floating/\(floating)").count, 1)
        XCTAssertEqual(log.matching(.warning, "not an address of the floating range", "10.1.2.3").count, 1)
    }

    func testANodeWithoutCandidatesOnlyFollows() async throws {
        let a = election(1)
        await a.contend(now: 0)
        let follower = election(2, candidates: [])
        let free = try await sync(follower)
        XCTAssertEqual(free, [false])
        await follower.contend(now: 0)
        XCTAssertEqual(store.grants, 1, "only the candidate asked for a lease")
        XCTAssertEqual(follower.holders(), [floating: holder(1).privateIP])
    }
}

/// Forwards to `inner` until cut, then fails like an unreachable etcd; counts leases and renewals.
final class SeverableStore: Datastore {
    let inner: InMemoryDatastore
    private let state = Mutex((cut: false, keepAlives: 0, grants: 0))

    init(inner: InMemoryDatastore) { self.inner = inner }

    func cut(_ value: Bool) { state.withLock { $0.cut = value } }
    var keepAlives: Int { state.withLock { $0.keepAlives } }
    var grants: Int { state.withLock { $0.grants } }

    private func check() throws {
        if state.withLock({ $0.cut }) {
            throw DatastoreError.unreachable([.init(endpoint: "test", reason: "cut off")])
        }
    }

    func get(_ key: String) async throws -> KeyValue? { try check(); return try await inner.get(key) }
    func list(prefix: String) async throws -> (items: [KeyValue], revision: Int64) {
        try check()
        return try await inner.list(prefix: prefix)
    }
    func create(_ key: String, value: [UInt8], lease: Int64?) async throws -> Bool {
        try check()
        return try await inner.create(key, value: value, lease: lease)
    }
    func replace(_ key: String, value: [UInt8], ifModRevision: Int64, lease: Int64?) async throws -> Bool {
        try check()
        return try await inner.replace(key, value: value, ifModRevision: ifModRevision, lease: lease)
    }
    func put(_ key: String, value: [UInt8], lease: Int64?) async throws {
        try check()
        try await inner.put(key, value: value, lease: lease)
    }
    func delete(_ key: String) async throws { try check(); try await inner.delete(key) }
    func grantLease(ttlSeconds: Int64) async throws -> Int64 {
        try check()
        state.withLock { $0.grants += 1 }
        return try await inner.grantLease(ttlSeconds: ttlSeconds)
    }
    func keepAlive(lease: Int64) async throws -> Int64 {
        try check()
        state.withLock { $0.keepAlives += 1 }
        return try await inner.keepAlive(lease: lease)
    }
    func revoke(lease: Int64) async throws { try check(); try await inner.revoke(lease: lease) }
    func watch(prefix: String, fromRevision: Int64) -> AsyncThrowingStream<[WatchEvent], any Error> {
        inner.watch(prefix: prefix, fromRevision: fromRevision)
    }
}
