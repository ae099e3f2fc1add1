import QuantumCore
import QuantumDatastore
import XCTest

/// EtcdClient and NetworkRegistry against a real etcd started by each test.
final class EtcdIntegrationTests: XCTestCase {
    var server: EtcdServer?
    var clients: [EtcdClient] = []
    let log = LogCapture()

    func start(withTLS: Bool = false, extraArguments: [String] = []) async throws -> EtcdServer {
        let server = try EtcdServer(withTLS: withTLS, extraArguments: extraArguments)
        self.server = server
        try await server.waitUntilReady(logger: log.logger)
        return server
    }

    func client(_ server: EtcdServer, endpoints: [String]? = nil, username: String? = nil,
                password: String? = nil) throws -> EtcdClient {
        let client = try server.client(endpoints: endpoints, username: username, password: password, logger: log.logger)
        clients.append(client)
        return client
    }

    override func tearDown() async throws {
        for client in clients { try? await client.shutdown() }
        clients = []
        server?.stop()
        server = nil
    }

    func testPutGetListDelete() async throws {
        let server = try await start()
        try await DatastoreContract.putGetListDelete(try client(server))
    }

    func testCreateConflictAndReplaceCompareAndSet() async throws {
        let server = try await start()
        try await DatastoreContract.createAndReplace(try client(server))
    }

    func testLeaseGrantKeepAliveAndExpiry() async throws {
        let server = try await start()
        try await DatastoreContract.leases(try client(server))
    }

    func testWatchSeesPutAndDelete() async throws {
        let server = try await start()
        try await DatastoreContract.watch(try client(server))
    }

    func testWatchFromCompactedRevisionEndsWithCompactedError() async throws {
        let server = try await start()
        let store = try client(server)
        for n in 0..<5 { try await store.put("/k", value: [UInt8(n)], lease: nil) }
        let (_, revision) = try await store.list(prefix: "/k")
        try server.etcdctl(["compaction", String(revision)])
        do {
            for try await event in store.watch(prefix: "/", fromRevision: 2) { XCTFail("unexpected \(event)") }
            XCTFail("the watch must end with an error")
        } catch let error as DatastoreError {
            XCTAssertEqual(error, .compacted(requested: 2, compactRevision: revision))
        }
    }

    func testWatchEndsWithErrorWhenEtcdStops() async throws {
        let server = try await start()
        let store = try client(server)
        let ended = Box<(any Error)?>(nil)
        let seen = Box(0)
        let task = Task {
            do {
                for try await batch in store.watch(prefix: "/", fromRevision: 1) { seen.update { $0 += batch.count } }
            } catch {
                ended.set(error)
            }
        }
        // A delivered event shows the watch stream is established before etcd goes away.
        try await store.put("/k", value: [1], lease: nil)
        try await eventually("the watch delivers") { seen.get() > 0 }
        server.stop()
        try await eventually("the watch ends") { ended.get() != nil }
        XCTAssertTrue(ended.get() is DatastoreError, "\(String(describing: ended.get()))")
        task.cancel()
    }

    func testFirstEndpointDeadStillWorks() async throws {
        let server = try await start()
        let dead = "127.0.0.1:\(try EtcdServer.freePort())"
        let store = try client(server, endpoints: [dead, "http://\(server.endpoint)/"])
        try await store.put("/f/k", value: [1], lease: nil)
        let value = try await store.get("/f/k")
        XCTAssertEqual(value?.value, [1])
        var seen: [WatchEvent] = []
        for try await batch in store.watch(prefix: "/f/", fromRevision: 1) {
            seen += batch
            break
        }
        XCTAssertEqual(seen.count, 1)
    }

    func testAllEndpointsDeadNamesEachEndpoint() async throws {
        let server = try await start()
        let dead = "127.0.0.1:\(try EtcdServer.freePort())"
        let store = try client(server, endpoints: [dead])
        do {
            _ = try await store.get("/x")
            XCTFail("nothing listens there")
        } catch let error as DatastoreError {
            XCTAssertEqual(error.description, "etcd at \(dead): connection refused")
        }
    }

    func testHTTPErrorNamesEndpointAndPath() async throws {
        let server = try await start()
        let store = try client(server)
        do {
            try await store.put("/e", value: [1], lease: 12345)
            XCTFail("the lease does not exist")
        } catch let error as DatastoreError {
            XCTAssertEqual(error, .leaseNotFound(12345))
        }
    }

    func testUsernamePasswordAuthentication() async throws {
        // Tokens live one second, so the client must re-authenticate when etcd rejects an old one.
        let server = try await start(extraArguments: ["--auth-token", "simple", "--auth-token-ttl", "1"])
        try server.etcdctl(["user", "add", "root:pw"])
        try server.etcdctl(["user", "grant-role", "root", "root"])
        try server.etcdctl(["auth", "enable"])

        let anonymous = try client(server)
        do {
            try await anonymous.put("/a", value: [1], lease: nil)
            XCTFail("auth is enabled")
        } catch let error as DatastoreError {
            XCTAssertTrue(error.description.contains("/v3/kv/put"), error.description)
        }

        let wrong = try client(server, username: "root", password: "nope")
        do {
            _ = try await wrong.get("/a")
            XCTFail("wrong password")
        } catch let error as DatastoreError {
            guard case .authenticationFailed = error else { return XCTFail("\(error)") }
        }

        let store = try client(server, username: "root", password: "pw")
        try await store.put("/a", value: [1], lease: nil)
        let value = try await store.get("/a")
        XCTAssertEqual(value?.value, [1])
        let events = Box<[WatchEvent]>([])
        let task = Task { for try await batch in store.watch(prefix: "/a", fromRevision: 1) { events.update { $0 += batch } } }
        defer { task.cancel() }
        try await eventually("authenticated watch") { events.get().count == 1 }

        try await Task.sleep(for: .milliseconds(2500))
        let afterExpiry = try await store.get("/a")
        XCTAssertEqual(afterExpiry?.value, [1], "the client re-authenticates when its token expired")

        let registry = NetworkRegistry(store: store, prefix: "/quantum", logger: log.logger)
        _ = try await registry.bootstrapConfig(proposed: Fixtures.config)
        let lease = try await registry.claim(address: nil, mapping: Fixtures.mapping(machine: 1), config: Fixtures.config,
                                             machineID: Fixtures.machineID(1), preferred: nil)
        XCTAssertEqual(lease.address, Fixtures.address("10.99.0.32"))
    }

    func testTLSWithClientCertificate() async throws {
        let server = try await start(withTLS: true)
        let store = try client(server)
        try await DatastoreContract.createAndReplace(store)

        let untrusting = try EtcdClient(configuration: .init(endpoints: [server.endpoint], tlsCert: server.tls?.clientCert,
                                                             tlsKey: server.tls?.clientKey, requestTimeout: .seconds(3)),
                                        logger: log.logger)
        clients.append(untrusting)
        do {
            _ = try await untrusting.get("/x")
            XCTFail("the server certificate is not signed by a trusted CA")
        } catch let error as DatastoreError {
            XCTAssertTrue(error.description.hasPrefix("etcd at \(server.endpoint): TLS"), error.description)
        }
        let skipVerify = try EtcdClient(configuration: .init(endpoints: [server.endpoint], tlsCert: server.tls?.clientCert,
                                                             tlsKey: server.tls?.clientKey, tlsSkipVerify: true),
                                        logger: log.logger)
        clients.append(skipVerify)
        let value = try await skipVerify.get("/c/k")
        XCTAssertNotNil(value)
    }

    func testUnreadableTLSFileIsAConfigurationError() throws {
        XCTAssertThrowsError(try EtcdClient(configuration: .init(endpoints: ["127.0.0.1:1"], tlsCACert: "/nonexistent/ca.pem"),
                                            logger: log.logger)) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/ca.pem"), "\(error)")
        }
    }

    // MARK: NetworkRegistry on etcd

    func testConcurrentRegistriesGetDistinctAddresses() async throws {
        let server = try await start()
        let stores = try (0..<10).map { _ in try client(server) }
        let logger = log.logger
        _ = try await NetworkRegistry(store: stores[0], prefix: "/quantum", logger: logger).bootstrapConfig(proposed: Fixtures.config)
        let leases = try await withThrowingTaskGroup(of: Lease.self) { group in
            for (n, store) in stores.enumerated() {
                group.addTask {
                    try await NetworkRegistry(store: store, prefix: "/quantum", logger: logger).claim(
                        address: nil, mapping: Fixtures.mapping(machine: n + 1), config: Fixtures.config,
                        machineID: Fixtures.machineID(n + 1), preferred: nil)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(Set(leases.map(\.address)).count, 10, "\(leases.map(\.address))")
    }

    func testRegistrySyncAndKeepAliveOnEtcd() async throws {
        let server = try await start()
        let store = try client(server)
        let registry = NetworkRegistry(store: store, prefix: "/quantum", logger: log.logger)
        let known = Box<[IPv4Address: Mapping]>([:])
        let sync = Task {
            await registry.runMappingSync(config: Fixtures.config, syncInterval: .seconds(30)) { updates in
                known.update { map in for update in updates { map[update.address] = update.mapping } }
            }
        }
        defer { sync.cancel() }

        let lease = try await registry.claim(address: nil, mapping: Fixtures.mapping(machine: 1), config: Fixtures.config,
                                             machineID: Fixtures.machineID(1), preferred: nil)
        try await eventually("claimed mapping delivered") { known.get()[lease.address] != nil }

        let renewed = Box<Lease?>(nil)
        let keepAlive = Task {
            try await registry.runKeepAlive(lease: lease, mapping: Fixtures.mapping(machine: 1)(lease.address),
                                            config: Fixtures.config, interval: .milliseconds(100)) { renewed.set($0) }
        }
        defer { keepAlive.cancel() }
        try await store.revoke(lease: lease.id)
        try await eventually("re-claimed after revoke") { renewed.get() != nil }
        XCTAssertEqual(renewed.get()?.address, lease.address)
        try await eventually("mapping delivered again") { known.get()[lease.address] != nil }
        sync.cancel()
        keepAlive.cancel()
        await sync.value
        try await keepAlive.value
    }

    /// The scale drill: 10,000 mappings written one by one by `scripts/seed-mappings.py` while a
    /// registry follows them. Every one must be delivered, as changes (never whole maps), with
    /// the process's peak memory staying bounded.
    func testTenThousandAdditionsAreAbsorbedAsChanges() async throws {
        let server = try await start()
        let store = try client(server)
        let count = 10_000
        let wide = try NetworkConfig(network: Fixtures.prefix("10.99.0.0/16"), staticRange: Fixtures.prefix("10.99.0.0/24"),
                                     floatingRange: Fixtures.prefix("10.99.1.0/24"), leaseTimeSeconds: 60)
        let registry = NetworkRegistry(store: store, prefix: "/quantum", logger: log.logger)
        let delivered = Box<(calls: Int, updates: Int, largest: Int, known: Set<IPv4Address>)>((0, 0, 0, []))
        let sync = Task {
            await registry.runMappingSync(config: wide, syncInterval: .seconds(300)) { updates in
                delivered.update { state in
                    state.calls += 1
                    state.updates += updates.count
                    state.largest = max(state.largest, updates.count)
                    for update in updates where update.mapping != nil { state.known.insert(update.address) }
                }
            }
        }
        defer { sync.cancel() }
        let peakBefore = try Self.peakResidentKiB()
        let started = ContinuousClock.now
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/seed-mappings.py").path
        let seeder = Process()
        seeder.executableURL = URL(fileURLWithPath: try EtcdServer.binary("python3"))
        seeder.arguments = [script, "--endpoint", server.url, "--count", String(count)]
        let output = Pipe()
        seeder.standardOutput = output
        try seeder.run()
        let seeded = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        seeder.waitUntilExit()
        XCTAssertEqual(seeder.terminationStatus, 0, seeded)
        try await eventually("all \(count) mappings delivered", timeout: .seconds(60)) { delivered.get().known.count == count }
        let elapsed = ContinuousClock.now - started
        let peakGrowth = try Self.peakResidentKiB() - peakBefore
        let state = delivered.get()
        print("""
            scale: \(seeded.trimmingCharacters(in: .whitespacesAndNewlines)); all \(count) delivered \(elapsed) after the \
            seeding began, in \(state.calls) calls (largest \(state.largest) updates), peak RSS grew by \(peakGrowth / 1024) MiB
            """)
        XCTAssertEqual(state.updates, count, "each addition is delivered once")
        XCTAssertLessThan(peakGrowth, 256 * 1024, "memory must stay bounded (whole-map copies per event used gigabytes)")
        sync.cancel()
        await sync.value
    }

    /// VmHWM of this process: the peak resident set size, in KiB.
    static func peakResidentKiB() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else {
            throw EtcdServer.Failure("no VmHWM in /proc/self/status")
        }
        return kib
    }
}
