import NIOCore
import QuantumDatastore
import XCTest

/// EtcdClient against sick members (``FakeEtcdMember``), alone or in front of a real etcd.
final class EtcdFailoverTests: EtcdMembersTestCase {
    func client(_ endpoints: [String], username: String? = nil, password: String? = nil,
                stallBound: Duration = .seconds(10), probeTimeout: Duration = .seconds(3)) throws -> EtcdClient {
        let client = try EtcdClient(configuration: .init(endpoints: endpoints, username: username, password: password,
                                                         requestTimeout: .seconds(3), watchStallBound: stallBound,
                                                         probeTimeout: probeTimeout),
                                    logger: log.logger)
        clients.append(client)
        return client
    }

    static let unavailable = #"{"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14}"#

    // MARK: 5xx and 429

    func testServerErrorsAndTooManyRequestsFailOverToTheNextEndpoint() async throws {
        let server = try await etcd()
        for status in [500, 503, 429] {
            let sick = try await fake { _ in .status(status, Self.unavailable) }
            let store = try client([sick.endpoint, server.endpoint])
            try await store.put("/f/\(status)", value: [1], lease: nil)
            let value = try await store.get("/f/\(status)")
            XCTAssertEqual(value?.value, [1], "HTTP \(status) must send the request to the next endpoint")
            XCTAssertGreaterThanOrEqual(sick.count("/v3/kv/put"), 1, "the sick member was tried first")
        }
    }

    func testEveryEndpointAnsweringServerErrorsIsUnreachableNamingEach() async throws {
        let first = try await fake { _ in .status(503, Self.unavailable) }
        let second = try await fake { _ in .status(429, #"{"error":"etcdserver: too many requests"}"#) }
        let store = try client([first.endpoint, second.endpoint])
        do {
            _ = try await store.get("/x")
            XCTFail("no endpoint can serve")
        } catch let error as DatastoreError {
            XCTAssertEqual(error, .unreachable([
                .init(endpoint: first.endpoint, reason: "HTTP 503: etcdserver: no leader"),
                .init(endpoint: second.endpoint, reason: "HTTP 429: etcdserver: too many requests"),
            ]))
        }
    }

    func testServerErrorFromTheAuthEndpointIsUnavailableNotRefused() async throws {
        let sick = try await fake { _ in .status(503, Self.unavailable) }
        let store = try client([sick.endpoint], username: "root", password: "pw")
        do {
            _ = try await store.get("/x")
            XCTFail("the member cannot authenticate")
        } catch let error as DatastoreError {
            // .authenticationFailed would stop a starting node; .unreachable is waited out.
            XCTAssertEqual(error, .unreachable([.init(endpoint: sick.endpoint, reason: "HTTP 503: etcdserver: no leader")]))
        }
        XCTAssertEqual(sick.count("/v3/auth/authenticate"), 1)
    }

    func testWatchFailsOverOnServerError() async throws {
        let server = try await etcd()
        let sick = try await fake { _ in .status(503, Self.unavailable) }
        let store = try client([sick.endpoint, server.endpoint])
        try await client([server.endpoint]).put("/w/a", value: [1], lease: nil)
        var iterator = store.watch(prefix: "/w/", fromRevision: 1).makeAsyncIterator()
        let batch = try await iterator.next()
        XCTAssertEqual(batch?.map(\.key), ["/w/a"])
        XCTAssertEqual(sick.count("/v3/watch"), 1)
    }

    // MARK: Watch stalls

    func testSilentWatchMovesToTheNextEndpointWithoutLosingEvents() async throws {
        let server = try await etcd()
        // A member that took the watch and then went dark: the probe gets no answer either.
        let dark = try await fake { path in path == "/v3/watch" ? .watchCreatedThenSilent : .silence }
        let store = try client([dark.endpoint, server.endpoint], stallBound: .milliseconds(300), probeTimeout: .milliseconds(300))
        let writer = try client([server.endpoint])
        try await writer.put("/s/before", value: [0], lease: nil)
        let (_, revision) = try await writer.list(prefix: "/s/")
        let events = Box<[WatchEvent]>([])
        let ended = Box<(any Error)?>(nil)
        let task = Task {
            do {
                for try await batch in store.watch(prefix: "/s/", fromRevision: revision + 1) { events.update { $0 += batch } }
            } catch {
                ended.set(error)
            }
        }
        defer { task.cancel() }
        try await eventually("the watch reached the dark member") { dark.count("/v3/watch") == 1 }
        // Written while the watch hangs on the dark member: must still be delivered.
        try await writer.put("/s/during", value: [1], lease: nil)
        try await eventually("the event after the move", timeout: .seconds(5)) { events.get().map(\.key) == ["/s/during"] }
        XCTAssertGreaterThanOrEqual(dark.count("/v3/kv/range"), 1, "the silent endpoint was probed")
        XCTAssertEqual(log.matching(.warning, "silent", "quorum read", dark.endpoint).count, 1)
        try await writer.put("/s/after", value: [2], lease: nil)
        try await eventually("later events") { events.get().map(\.key) == ["/s/during", "/s/after"] }
        XCTAssertNil(ended.get())
        task.cancel()
    }

    func testSilentWatchWhoseEndpointAnswersIsKept() async throws {
        let quiet = try await fake { path in
            path == "/v3/watch" ? .watchCreatedThenSilent : .status(200, #"{"header":{"revision":"1"}}"#)
        }
        let store = try client([quiet.endpoint], stallBound: .milliseconds(200), probeTimeout: .milliseconds(300))
        let ended = Box<(any Error)?>(nil)
        let task = Task {
            do { for try await _ in store.watch(prefix: "/q/", fromRevision: 2) {} } catch { ended.set(error) }
        }
        defer { task.cancel() }
        try await eventually("three probes") { quiet.count("/v3/kv/range") >= 3 }
        XCTAssertEqual(quiet.count("/v3/watch"), 1, "a member that answers the probe keeps the watch")
        XCTAssertNil(ended.get())
        task.cancel()
    }

    func testProgressNotificationsCountAsLife() async throws {
        let ticking = try await fake { path in path == "/v3/watch" ? .watchProgressEvery(.milliseconds(100)) : .silence }
        let store = try client([ticking.endpoint], stallBound: .milliseconds(400), probeTimeout: .milliseconds(300))
        let task = Task { for try await _ in store.watch(prefix: "/p/", fromRevision: 2) {} }
        defer { task.cancel() }
        try await eventually("the watch is open") { ticking.count("/v3/watch") == 1 }
        // Three stall bounds of progress-only traffic: no probe may be sent.
        let until = ContinuousClock.now + .milliseconds(1200)
        while ContinuousClock.now < until, ticking.count("/v3/kv/range") == 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertEqual(ticking.count("/v3/kv/range"), 0, "progress notifications must keep the watch alive")
        task.cancel()
    }
}
