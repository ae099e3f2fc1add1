import QuantumCore
import QuantumDatastore
import XCTest

final class NetworkRegistryTests: XCTestCase {
    let store = InMemoryDatastore()
    let log = LogCapture()
    var registry: NetworkRegistry { NetworkRegistry(store: store, prefix: "/quantum", logger: log.logger) }
    let config = Fixtures.config

    func claim(_ machine: Int, address: String? = nil, preferred: String? = nil,
               config: NetworkConfig? = nil) async throws -> Lease {
        try await registry.claim(address: address.map(Fixtures.address), mapping: Fixtures.mapping(machine: machine),
                                 config: config ?? self.config, machineID: Fixtures.machineID(machine),
                                 preferred: preferred.map(Fixtures.address))
    }

    // MARK: Configuration

    func testBootstrapStoresProposedConfigWhenAbsent() async throws {
        let result = try await registry.bootstrapConfig(proposed: config)
        XCTAssertEqual(result, config)
        let stored = try await store.get("/quantum/config")
        XCTAssertEqual(try NetworkConfig.parse(json: XCTUnwrap(stored).value), config)
    }

    func testBootstrapReturnsStoredConfigAndWarnsWhenItDiffers() async throws {
        _ = try await registry.bootstrapConfig(proposed: config)
        let other = try NetworkConfig(network: Fixtures.prefix("10.50.0.0/16"), staticRange: Fixtures.prefix("10.50.0.0/24"),
                                      floatingRange: Fixtures.prefix("10.50.1.0/24"), leaseTimeSeconds: 120)
        let result = try await registry.bootstrapConfig(proposed: other)
        XCTAssertEqual(result, config, "the stored config must win")
        XCTAssertEqual(log.matching(.warning, "stored", "wins", "10.99.0.0/24", "10.50.0.0/16").count, 1)
    }

    func testBootstrapWithSameConfigDoesNotWarn() async throws {
        _ = try await registry.bootstrapConfig(proposed: config)
        _ = try await registry.bootstrapConfig(proposed: config)
        XCTAssertTrue(log.matching(.warning).isEmpty)
    }

    func testCorruptStoredConfigIsReportedAndNotOverwritten() async throws {
        let garbage = Array(#"{"network":"10.99.0.0/33"}"#.utf8)
        try await store.put("/quantum/config", value: garbage, lease: nil)
        do {
            _ = try await registry.bootstrapConfig(proposed: config)
            XCTFail("a corrupt config must be refused")
        } catch let error as RegistryError {
            guard case .corruptConfig(let key, _) = error else { return XCTFail("wrong error \(error)") }
            XCTAssertEqual(key, "/quantum/config")
            XCTAssertTrue(error.description.contains("/quantum/config"), error.description)
        }
        let stored = try await store.get("/quantum/config")
        XCTAssertEqual(stored?.value, garbage)
    }

    // MARK: Allocation

    func testDHCPSkipsStaticAndFloatingRanges() async throws {
        let first = try await claim(1)
        let second = try await claim(2)
        XCTAssertEqual(first.address, Fixtures.address("10.99.0.32"))
        XCTAssertEqual(second.address, Fixtures.address("10.99.0.33"))
        XCTAssertEqual(first.key, "/quantum/nodes/10.99.0.32")
        let stored = try await store.get(first.key)
        XCTAssertEqual(stored?.lease, first.id)
        XCTAssertEqual(try Mapping.parse(json: XCTUnwrap(stored).value).machineID, Fixtures.machineID(1))
    }

    func testDHCPSkipsNetworkAndBroadcastAndReportsFull() async throws {
        // 10.99.0.0/28: static .0–.3, floating .4–.7, broadcast .15 → dynamic .8–.14.
        let small = try NetworkConfig(network: Fixtures.prefix("10.99.0.0/28"), staticRange: Fixtures.prefix("10.99.0.0/30"),
                                      floatingRange: Fixtures.prefix("10.99.0.4/30"), leaseTimeSeconds: 60)
        var addresses: [String] = []
        for machine in 1...7 { addresses.append(try await claim(machine, config: small).address.description) }
        XCTAssertEqual(addresses, (8...14).map { "10.99.0.\($0)" })
        do {
            _ = try await claim(8, config: small)
            XCTFail("the network is full")
        } catch let error as RegistryError {
            XCTAssertEqual(error, .networkFull(small.network))
        }
    }

    func testRestartedMachineGetsItsAddressBack() async throws {
        let first = try await claim(1)
        _ = try await claim(2)
        let again = try await claim(1)
        XCTAssertEqual(again.address, first.address)
        XCTAssertNotEqual(again.id, first.id)
        let stored = try await store.get(first.key)
        XCTAssertEqual(stored?.lease, again.id, "the key is bound to the new lease")
    }

    func testRepublishStoresNewCandidatesUnderTheSameLeaseOnly() async throws {
        let lease = try await claim(1)
        var mapping = Fixtures.mapping(machine: 1)(lease.address)
        mapping.candidates = [IPv4Endpoint("198.51.100.7:1099")!]
        let republished = try await registry.republish(mapping, lease: lease)
        XCTAssertTrue(republished)
        let stored = try await store.get(lease.key)
        XCTAssertEqual(try stored.map { try Mapping.parse(json: $0.value) }, mapping)
        XCTAssertEqual(stored?.lease, lease.id, "still bound to the lease")
        // Once the key is under another lease (the address was claimed again), it is left alone.
        let again = try await claim(1)
        mapping.candidates = [IPv4Endpoint("198.51.100.8:1099")!]
        let stale = try await registry.republish(mapping, lease: lease)
        XCTAssertFalse(stale)
        let kept = try await store.get(again.key)
        XCTAssertEqual(try kept.map { try Mapping.parse(json: $0.value) }?.candidates, [])
    }

    func testPreferredAddressIsTriedFirst() async throws {
        let lease = try await claim(1, preferred: "10.99.0.77")
        XCTAssertEqual(lease.address, Fixtures.address("10.99.0.77"))
    }

    func testPreferredAddressHeldByAnotherMachineIsSkipped() async throws {
        let taken = try await claim(1)
        let lease = try await claim(2, preferred: taken.address.description)
        XCTAssertNotEqual(lease.address, taken.address)
        XCTAssertEqual(lease.address, Fixtures.address("10.99.0.33"))
    }

    func testStaticClaimInsideStaticRange() async throws {
        let lease = try await claim(1, address: "10.99.0.5")
        XCTAssertEqual(lease.address, Fixtures.address("10.99.0.5"))
        // The same machine may claim it again (restart with --private-ip).
        let again = try await claim(1, address: "10.99.0.5")
        XCTAssertEqual(again.address, lease.address)
    }

    func testStaticClaimRefusedWhenHeldByAnotherMachine() async throws {
        _ = try await claim(1, address: "10.99.0.5")
        do {
            _ = try await claim(2, address: "10.99.0.5")
            XCTFail("the address is held")
        } catch let error as RegistryError {
            XCTAssertEqual(error, .addressHeld(Fixtures.address("10.99.0.5"), machineID: Fixtures.machineID(1)))
            XCTAssertEqual(error.description, "10.99.0.5 is held by machine \(Fixtures.machineID(1))")
        }
        let stored = try await store.get("/quantum/nodes/10.99.0.5")
        XCTAssertEqual(try Mapping.parse(json: XCTUnwrap(stored).value).machineID, Fixtures.machineID(1))
    }

    func testStaticClaimRefusedOutsideNetworkAndOnReservedAddresses() async throws {
        for text in ["10.98.0.5", "10.99.0.0", "10.99.0.255", "10.99.0.20"] {
            do {
                _ = try await claim(1, address: text)
                XCTFail("\(text) must be refused")
            } catch let error as RegistryError {
                XCTAssertEqual(error, .addressNotClaimable(Fixtures.address(text), network: config.network))
            }
        }
        let (items, _) = try await store.list(prefix: "/quantum/nodes/")
        XCTAssertTrue(items.isEmpty)
    }

    func testTwentyConcurrentClaimsGetDistinctAddresses() async throws {
        let store = self.store, config = self.config, logger = log.logger
        let leases = try await withThrowingTaskGroup(of: Lease.self) { group in
            for machine in 1...20 {
                group.addTask {
                    let registry = NetworkRegistry(store: store, prefix: "/quantum", logger: logger)
                    return try await registry.claim(address: nil, mapping: Fixtures.mapping(machine: machine), config: config,
                                                    machineID: Fixtures.machineID(machine), preferred: nil)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(Set(leases.map(\.address)).count, 20)
        let (items, _) = try await store.list(prefix: "/quantum/nodes/")
        XCTAssertEqual(items.count, 20)
        for item in items {
            let mapping = try Mapping.parse(json: item.value)
            XCTAssertEqual(item.key, "/quantum/nodes/\(mapping.privateIP)")
        }
    }

    func testReleaseDeletesTheNodeKey() async throws {
        let lease = try await claim(1)
        try await registry.release(lease: lease)
        let stored = try await store.get(lease.key)
        XCTAssertNil(stored)
    }

    // MARK: Keep-alive

    func testKeepAliveReclaimsSameAddressAfterLeaseLoss() async throws {
        let lease = try await claim(1)
        let mapping = Fixtures.mapping(machine: 1)(lease.address)
        let renewed = Box<[Lease]>([])
        let registry = self.registry, config = self.config
        let task = Task {
            try await registry.runKeepAlive(lease: lease, mapping: mapping, config: config, interval: .milliseconds(20)) { new in
                renewed.update { $0.append(new) }
            }
        }
        defer { task.cancel() }
        try await store.revoke(lease: lease.id)
        try await eventually("re-claim after revoke") { renewed.get().count == 1 }
        let new = try XCTUnwrap(renewed.get().first)
        XCTAssertEqual(new.address, lease.address)
        XCTAssertNotEqual(new.id, lease.id)
        let stored = try await store.get(lease.key)
        XCTAssertEqual(stored?.lease, new.id)
        XCTAssertEqual(log.matching(.warning, "lost the address lease", "\(lease.address)").count, 1)

        try await store.delete(lease.key)
        try await eventually("re-claim after delete") { renewed.get().count == 2 }
        let afterDelete = try await store.get(lease.key)
        XCTAssertEqual(afterDelete?.lease, renewed.get().last?.id)
        task.cancel()
        try await task.value
    }

    func testKeepAliveRenewsEveryRefreshIntervalThroughTheInjectedSleep() async throws {
        _ = try await registry.bootstrapConfig(proposed: config)
        let lease = try await claim(1)
        let mapping = Fixtures.mapping(machine: 1)(lease.address)
        let waits = Box<[Duration]>([])
        // The injected sleep returns at once, so two minutes between renewals take no time;
        // the third wait ends the loop as a cancelled task's sleep would.
        try await registry.runKeepAlive(lease: lease, mapping: mapping, config: config, interval: .seconds(120),
                                        sleep: { duration in
                                            waits.update { $0.append(duration) }
                                            if waits.get().count == 3 { throw CancellationError() }
                                        })
        XCTAssertEqual(waits.get(), [.seconds(120), .seconds(120), .seconds(120)])
        let stored = try await store.get(lease.key)
        XCTAssertEqual(stored?.lease, lease.id, "renewed, never re-claimed")
        XCTAssertTrue(log.matching(.warning).isEmpty)
    }

    func testKeepAliveStopsWhenAnotherMachineTookTheAddress() async throws {
        let lease = try await claim(1, address: "10.99.0.5")
        let mapping = Fixtures.mapping(machine: 1)(lease.address)
        try await store.revoke(lease: lease.id)
        _ = try await claim(2, address: "10.99.0.5")
        let registry = self.registry, config = self.config
        let task = Task {
            try await registry.runKeepAlive(lease: lease, mapping: mapping, config: config, interval: .milliseconds(20))
        }
        let outcome = await Task {
            // Bounded: a keep-alive that retries instead of stopping fails here rather than hanging the suite.
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await task.value }
                group.addTask {
                    try await Task.sleep(for: .seconds(5))
                    task.cancel()
                    XCTFail("the keep-alive did not stop")
                }
                try await group.next()
                group.cancelAll()
            }
        }.result
        guard case .failure(let error) = outcome else { return XCTFail("the keep-alive must end with an error") }
        XCTAssertEqual(error as? RegistryError, .addressLost(lease.address, machineID: Fixtures.machineID(2)))
        XCTAssertEqual("\(error)", "lost private address 10.99.0.5: it is now held by machine \(Fixtures.machineID(2))")
        let stored = try await store.get(lease.key)
        XCTAssertEqual(try Mapping.parse(json: XCTUnwrap(stored).value).machineID, Fixtures.machineID(2))
    }

    func testReclaimOfAnAddressHeldByAnotherMachineIsAddressLost() async throws {
        let taken = try await claim(2)
        do {
            _ = try await registry.reclaim(taken.address, mapping: Fixtures.mapping(machine: 1)(taken.address), config: config)
            XCTFail("the address is held by machine 2")
        } catch let error as RegistryError {
            XCTAssertEqual(error, .addressLost(taken.address, machineID: Fixtures.machineID(2)))
        }
        let free = Fixtures.address("10.99.0.50")
        let lease = try await registry.reclaim(free, mapping: Fixtures.mapping(machine: 1)(free), config: config)
        XCTAssertEqual(lease.address, free)
        let stored = try await store.get(lease.key)
        XCTAssertEqual(stored?.lease, lease.id)
    }

    func testKeepAliveRestoresConfigAndMappingAfterPrefixWipe() async throws {
        _ = try await registry.bootstrapConfig(proposed: config)
        let lease = try await claim(1)
        let mapping = Fixtures.mapping(machine: 1)(lease.address)
        let registry = self.registry, config = self.config
        let task = Task {
            try await registry.runKeepAlive(lease: lease, mapping: mapping, config: config, interval: .milliseconds(50))
        }
        defer { task.cancel() }
        // etcdctl del --prefix /quantum
        for item in try await store.list(prefix: "/quantum").items { try await store.delete(item.key) }
        try await eventually("config and mapping re-created within one interval", timeout: .seconds(2)) {
            let config = try await store.get("/quantum/config"), mapping = try await store.get(lease.key)
            return config != nil && mapping != nil
        }
        let storedConfig = try await store.get("/quantum/config")
        XCTAssertEqual(try NetworkConfig.parse(json: XCTUnwrap(storedConfig).value), config)
        let storedMapping = try await store.get(lease.key)
        XCTAssertEqual(try Mapping.parse(json: XCTUnwrap(storedMapping).value), mapping)
        XCTAssertEqual(log.matching(.warning, "network configuration was missing", "/quantum/config").count, 1)
        task.cancel()
        try await task.value
    }

    // MARK: Mapping sync

    func startSync(interval: Duration = .seconds(60), alreadyDelivered: [MappingUpdate] = [],
                   store: (any Datastore)? = nil) -> (Task<Void, Never>, Box<[[MappingUpdate]]>) {
        let calls = Box<[[MappingUpdate]]>([])
        let registry = NetworkRegistry(store: store ?? self.store, prefix: "/quantum", logger: log.logger)
        let config = self.config
        let task = Task {
            await registry.runMappingSync(config: config, syncInterval: interval, alreadyDelivered: alreadyDelivered) { updates in
                calls.update { $0.append(updates) }
            }
        }
        return (task, calls)
    }

    func testSyncDeliversOnlyChanges() async throws {
        let first = try await claim(1)
        let (task, calls) = startSync()
        defer { task.cancel() }
        try await eventually("initial listing") { calls.get().count == 1 }
        let initial = try XCTUnwrap(calls.get().first)
        XCTAssertEqual(initial.map(\.address), [first.address])
        let firstKey = try await store.get(first.key)
        XCTAssertEqual(initial.first?.createRevision, firstKey?.createRevision, "the create revision comes from the store")
        XCTAssertNotEqual(initial.first?.createRevision, 0)

        let second = try await claim(2)
        try await eventually("watched put") { calls.get().count == 2 }
        let secondKey = try await store.get(second.key)
        XCTAssertEqual(calls.get()[1], [MappingUpdate(address: second.address, mapping: Fixtures.mapping(machine: 2)(second.address),
                                                      createRevision: try XCTUnwrap(secondKey).createRevision)],
                       "only the new node, not the whole map")
        try await registry.release(lease: first)
        try await eventually("watched delete") { calls.get().count == 3 }
        XCTAssertEqual(calls.get()[2], [MappingUpdate(address: first.address, mapping: nil, createRevision: 0)])
        task.cancel()
        await task.value
    }

    func testResyncDeliversTheDifferenceIncludingDeletions() async throws {
        // The watch of this store never delivers anything: only the periodic full listing can see changes.
        let deaf = DeafWatchStore(inner: store)
        let first = try await claim(1)
        let second = try await claim(2)
        let (task, calls) = startSync(interval: .milliseconds(100), store: deaf)
        defer { task.cancel() }
        try await eventually("initial listing") { calls.get().count == 1 }
        XCTAssertEqual(Set(calls.get().first?.map(\.address) ?? []), [first.address, second.address])
        try await registry.release(lease: first)
        let third = try await claim(3, address: "10.99.0.7")
        try await eventually("listing after the change") { calls.get().count == 2 }
        let diff = calls.get()[1].sorted { $0.address < $1.address }
        XCTAssertEqual(diff.map(\.address), [first.address, third.address].sorted())
        XCTAssertNil(diff.first { $0.address == first.address }?.mapping, "a vanished node is a deletion")
        XCTAssertNotNil(diff.first { $0.address == third.address }?.mapping)
        // Nothing changes: later listings deliver nothing.
        let listed = store.listings
        try await eventually("two more listings") { store.listings >= listed + 2 }
        XCTAssertEqual(calls.get().count, 2, "an unchanged listing must not call onChange")
        task.cancel()
        await task.value
    }

    func testSyncStartingFromCachedMappingsDeliversOnlyDifferences() async throws {
        let kept = try await claim(1)
        let keptKey = try await store.get(kept.key)
        let keptUpdate = MappingUpdate(address: kept.address, mapping: Fixtures.mapping(machine: 1)(kept.address),
                                       createRevision: try XCTUnwrap(keptKey).createRevision)
        let gone = Fixtures.address("10.99.0.90")
        let goneUpdate = MappingUpdate(address: gone, mapping: Fixtures.mapping(machine: 9)(gone), createRevision: 1)
        let (task, calls) = startSync(alreadyDelivered: [keptUpdate, goneUpdate])
        defer { task.cancel() }
        try await eventually("initial listing") { calls.get().count == 1 }
        XCTAssertEqual(calls.get().first, [MappingUpdate(address: gone, mapping: nil, createRevision: 0)])
        task.cancel()
        await task.value
    }

    func testSyncSkipsMappingsOutsideTheNetwork() async throws {
        let outside = Fixtures.address("10.98.0.7")
        try await store.put("/quantum/nodes/10.98.0.7", value: Fixtures.mapping(machine: 1)(outside).json(), lease: nil)
        let inside = try await claim(2)
        let (task, calls) = startSync()
        defer { task.cancel() }
        try await eventually("initial listing") { calls.get().count == 1 }
        XCTAssertEqual(calls.get().first?.map(\.address), [inside.address])
        XCTAssertEqual(log.matching(.warning, "outside the network", "/quantum/nodes/10.98.0.7").count, 1)
        // Through the watch: a new version outside the network is skipped and warned about once.
        try await store.put("/quantum/nodes/10.98.0.7", value: Fixtures.mapping(machine: 3)(outside).json(), lease: nil)
        try await eventually("warning for the watched version") {
            log.matching(.warning, "outside the network", "/quantum/nodes/10.98.0.7").count == 2
        }
        XCTAssertEqual(calls.get().count, 1, "nothing is delivered for a refused mapping")
        task.cancel()
        await task.value
    }

    func testSyncSkipsCorruptAndMismatchedMappingsWithWarnings() async throws {
        let good = Fixtures.mapping(machine: 1)(Fixtures.address("10.99.0.41"))
        try await store.put("/quantum/nodes/10.99.0.41", value: good.json(), lease: nil)
        try await store.put("/quantum/nodes/10.99.0.40", value: Array(#"{"machineID":"zz"}"#.utf8), lease: nil)
        try await store.put("/quantum/nodes/10.99.0.42", value: good.json(), lease: nil)
        let (task, calls) = startSync()
        defer { task.cancel() }
        try await eventually("initial map") { calls.get().count == 1 }
        XCTAssertEqual(calls.get().last?.map(\.address), [Fixtures.address("10.99.0.41")])
        XCTAssertEqual(log.matching(.warning, "does not parse", "/quantum/nodes/10.99.0.40", "machineID").count, 1)
        XCTAssertEqual(log.matching(.warning, "privateIP differs", "/quantum/nodes/10.99.0.42").count, 1)

        // A corrupt value arriving through the watch is skipped too.
        try await store.put("/quantum/nodes/10.99.0.43", value: Array("not json".utf8), lease: nil)
        try await eventually("warning for watched corrupt mapping") {
            log.matching(.warning, "does not parse", "/quantum/nodes/10.99.0.43").count == 1
        }
        XCTAssertEqual(calls.get().count, 1)

        // A good mapping replaced by a corrupt one is a deletion.
        try await store.put("/quantum/nodes/10.99.0.41", value: Array("broken".utf8), lease: nil)
        try await eventually("deletion of the now corrupt mapping") { calls.get().count == 2 }
        XCTAssertEqual(calls.get()[1], [MappingUpdate(address: Fixtures.address("10.99.0.41"), mapping: nil, createRevision: 0)])

        // A resync reads the same bad values again: each version is reported once only.
        let listed = store.listings
        store.dropWatches(reason: "forced resync")
        try await eventually("watch failure logged") { log.matching(.warning, "mapping sync failed", "forced resync").count == 1 }
        try await eventually("the full list again, after the backoff") { store.listings > listed }
        // The listing is read; let the sync finish handling it before looking at its effects.
        try await eventually("the resync watches again") { store.watcherCount > 0 }
        XCTAssertEqual(log.matching(.warning, "does not parse", "/quantum/nodes/10.99.0.40").count, 1)
        XCTAssertEqual(log.matching(.warning, "does not parse", "/quantum/nodes/10.99.0.43").count, 1)
        XCTAssertEqual(calls.get().count, 2, "the resync found nothing new to deliver")
        // A new bad version of a key is reported again.
        try await store.put("/quantum/nodes/10.99.0.40", value: Array("still not json".utf8), lease: nil)
        try await eventually("warning for the new bad version") {
            log.matching(.warning, "does not parse", "/quantum/nodes/10.99.0.40").count == 2
        }
        task.cancel()
        await task.value
    }

    func testSyncRecoversWhenTheWatchDrops() async throws {
        _ = try await claim(1)
        let (task, calls) = startSync()
        defer { task.cancel() }
        try await eventually("initial listing") { calls.get().count == 1 }
        // The watch opens after the listing: dropping before it exists would drop nothing.
        try await eventually("watch open") { store.watcherCount > 0 }
        store.dropWatches(reason: "simulated connection loss")
        let lease = try await claim(2)
        try await eventually("change seen after re-watch", timeout: .seconds(5)) {
            calls.get().contains { $0.contains { $0.address == lease.address && $0.mapping != nil } }
        }
        XCTAssertEqual(log.matching(.warning, "mapping sync failed", "simulated connection loss").count, 1)
        task.cancel()
        await task.value
    }
}

/// Forwards everything to `inner` except watches, which stay silent until cancelled.
struct DeafWatchStore: Datastore {
    let inner: InMemoryDatastore

    func get(_ key: String) async throws -> KeyValue? { try await inner.get(key) }
    func list(prefix: String) async throws -> (items: [KeyValue], revision: Int64) { try await inner.list(prefix: prefix) }
    func create(_ key: String, value: [UInt8], lease: Int64?) async throws -> Bool {
        try await inner.create(key, value: value, lease: lease)
    }
    func replace(_ key: String, value: [UInt8], ifModRevision: Int64, lease: Int64?) async throws -> Bool {
        try await inner.replace(key, value: value, ifModRevision: ifModRevision, lease: lease)
    }
    func put(_ key: String, value: [UInt8], lease: Int64?) async throws { try await inner.put(key, value: value, lease: lease) }
    func delete(_ key: String) async throws { try await inner.delete(key) }
    func grantLease(ttlSeconds: Int64) async throws -> Int64 { try await inner.grantLease(ttlSeconds: ttlSeconds) }
    func keepAlive(lease: Int64) async throws -> Int64 { try await inner.keepAlive(lease: lease) }
    func revoke(lease: Int64) async throws { try await inner.revoke(lease: lease) }
    func watch(prefix: String, fromRevision: Int64) -> AsyncThrowingStream<[WatchEvent], any Error> {
        // Holding the continuation in its own termination handler keeps the stream open until cancelled.
        AsyncThrowingStream { continuation in continuation.onTermination = { _ in _ = continuation } }
    }
}
