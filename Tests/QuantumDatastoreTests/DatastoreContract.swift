import QuantumDatastore
import XCTest

/// Checks that every ``Datastore`` shares etcd's semantics; run against both implementations.
enum DatastoreContract {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func putGetListDelete(_ store: any Datastore) async throws {
        let missing = try await store.get("/t/missing")
        XCTAssertNil(missing)
        try await store.put("/t/a", value: bytes("1"), lease: nil)
        try await store.put("/t/b", value: bytes("2"), lease: nil)
        try await store.put("/t0", value: bytes("outside"), lease: nil)
        try await store.put("/t/a", value: bytes("3"), lease: nil)
        let fetched = try await store.get("/t/a")
        let a = try XCTUnwrap(fetched)
        XCTAssertEqual(a.value, bytes("3"))
        XCTAssertLessThan(a.createRevision, a.modRevision)
        XCTAssertEqual(a.lease, 0)
        let (items, revision) = try await store.list(prefix: "/t/")
        XCTAssertEqual(items.map(\.key), ["/t/a", "/t/b"])
        XCTAssertEqual(items.map(\.value), [bytes("3"), bytes("2")])
        XCTAssertGreaterThanOrEqual(revision, a.modRevision)
        try await store.delete("/t/a")
        try await store.delete("/t/never-existed")
        let deleted = try await store.get("/t/a")
        XCTAssertNil(deleted)
        // Empty values round-trip.
        try await store.put("/t/empty", value: [], lease: nil)
        let empty = try await store.get("/t/empty")
        XCTAssertEqual(empty?.value, [])
    }

    static func createAndReplace(_ store: any Datastore) async throws {
        let created = try await store.create("/c/k", value: bytes("first"), lease: nil)
        XCTAssertTrue(created)
        let again = try await store.create("/c/k", value: bytes("second"), lease: nil)
        XCTAssertFalse(again, "create must fail when the key exists")
        let fetched = try await store.get("/c/k")
        let current = try XCTUnwrap(fetched)
        XCTAssertEqual(current.value, bytes("first"))
        let stale = try await store.replace("/c/k", value: bytes("x"), ifModRevision: current.modRevision - 1, lease: nil)
        XCTAssertFalse(stale, "replace must fail on a stale mod revision")
        let fresh = try await store.replace("/c/k", value: bytes("y"), ifModRevision: current.modRevision, lease: nil)
        XCTAssertTrue(fresh)
        let updated = try await store.get("/c/k")
        XCTAssertEqual(updated?.value, bytes("y"))
        XCTAssertEqual(updated?.createRevision, current.createRevision)
        let reused = try await store.replace("/c/k", value: bytes("z"), ifModRevision: current.modRevision, lease: nil)
        XCTAssertFalse(reused, "the same mod revision cannot win twice")
    }

    static func leases(_ store: any Datastore) async throws {
        let lease = try await store.grantLease(ttlSeconds: 1)
        XCTAssertNotEqual(lease, 0)
        try await store.put("/l/short", value: bytes("v"), lease: lease)
        let bound = try await store.get("/l/short")
        XCTAssertEqual(bound?.lease, lease)
        let ttl = try await store.keepAlive(lease: lease)
        XCTAssertGreaterThan(ttl, 0)
        // Without keep-alives the key goes away with the lease (etcd may take a little past the TTL).
        try await eventually("lease expiry", timeout: .seconds(6)) { try await store.get("/l/short") == nil }
        let gone = try await store.keepAlive(lease: lease)
        XCTAssertEqual(gone, 0)
        do {
            try await store.put("/l/again", value: bytes("v"), lease: lease)
            XCTFail("writing with an expired lease must fail")
        } catch let error as DatastoreError {
            XCTAssertEqual(error, .leaseNotFound(lease))
        }

        let long = try await store.grantLease(ttlSeconds: 60)
        let created = try await store.create("/l/long", value: bytes("v"), lease: long)
        XCTAssertTrue(created)
        try await store.revoke(lease: long)
        let revoked = try await store.get("/l/long")
        XCTAssertNil(revoked)
        try await store.revoke(lease: long)  // revoking twice is fine
    }

    static func watch(_ store: any Datastore) async throws {
        try await store.put("/w/before", value: bytes("0"), lease: nil)
        let (_, revision) = try await store.list(prefix: "/w/")
        let events = Box<[WatchEvent]>([])
        let task = Task {
            for try await batch in store.watch(prefix: "/w/", fromRevision: revision + 1) {
                XCTAssertFalse(batch.isEmpty, "a watch message is never empty")
                events.update { $0 += batch }
            }
        }
        defer { task.cancel() }
        // No wait for the watch to be established: it starts at a revision, so changes
        // written before it is up are delivered all the same.
        try await store.put("/w/a", value: bytes("1"), lease: nil)
        try await store.put("/other", value: bytes("x"), lease: nil)
        try await store.delete("/w/a")
        try await eventually("put and delete events") { events.get().count >= 2 }
        let seen = events.get()
        XCTAssertEqual(seen.count, 2, "only keys under the prefix, only after the start revision: \(seen)")
        guard case .put(let kv) = seen.first else { return XCTFail("expected a put, got \(seen)") }
        XCTAssertEqual(kv.key, "/w/a")
        XCTAssertEqual(kv.value, bytes("1"))
        guard case .delete(let key, let deletedAt) = seen.last else { return XCTFail("expected a delete, got \(seen)") }
        XCTAssertEqual(key, "/w/a")
        XCTAssertGreaterThan(deletedAt, kv.modRevision)
        task.cancel()
    }
}

final class InMemoryDatastoreTests: XCTestCase {
    func testPutGetListDelete() async throws { try await DatastoreContract.putGetListDelete(InMemoryDatastore()) }
    func testCreateAndReplace() async throws { try await DatastoreContract.createAndReplace(InMemoryDatastore()) }
    func testLeases() async throws { try await DatastoreContract.leases(InMemoryDatastore()) }
    func testWatch() async throws { try await DatastoreContract.watch(InMemoryDatastore()) }

    func testWatchFromCompactedRevisionFails() async throws {
        let store = InMemoryDatastore()
        for n in 0..<5 { try await store.put("/k", value: [UInt8(n)], lease: nil) }
        store.compact(revision: store.revision)
        do {
            for try await event in store.watch(prefix: "/", fromRevision: 2) { XCTFail("unexpected \(event)") }
            XCTFail("the watch must end with an error")
        } catch let error as DatastoreError {
            XCTAssertEqual(error, .compacted(requested: 2, compactRevision: store.revision))
        }
    }

    func testWatchReplaysHistoryFromRevision() async throws {
        let store = InMemoryDatastore()
        try await store.put("/h/a", value: [1], lease: nil)
        let start = store.revision
        try await store.put("/h/b", value: [2], lease: nil)
        var iterator = store.watch(prefix: "/h/", fromRevision: start).makeAsyncIterator()
        let first = try await iterator.next()?.first
        let second = try await iterator.next()?.first
        guard case .put(let a) = first, case .put(let b) = second else { return XCTFail("expected two puts") }
        XCTAssertEqual([a.key, b.key], ["/h/a", "/h/b"])
    }
}
