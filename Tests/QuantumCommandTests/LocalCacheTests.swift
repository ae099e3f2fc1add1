import Foundation
import Logging
@testable import QuantumCommand
import QuantumCore
import QuantumDatastore
import Synchronization
import XCTest

final class LocalCacheTests: XCTestCase {
    private var dataDir = ""

    override func setUpWithError() throws {
        dataDir = NSTemporaryDirectory() + "quantum-cache-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dataDir)
    }

    static let config = try! NetworkConfig(network: IPv4Prefix(parsing: "10.99.0.0/24"), staticRange: IPv4Prefix(parsing: "10.99.0.0/28"),
                                           floatingRange: IPv4Prefix(parsing: "10.99.0.16/28"), leaseTimeSeconds: 60)

    static func peer(_ last: UInt8, createRevision: Int64 = 7) -> MappingUpdate {
        let address = IPv4Address("10.99.0.\(last)")!
        return MappingUpdate(address: address, mapping: Mapping(
            machineID: String(repeating: "a", count: 31) + String(last % 10), privateIP: address,
            ipv4: IPv4Address("192.0.2.\(last)"), ipv6: IPv6Address("2001:db8::\(last)"), port: 1099,
            publicKey: [UInt8](repeating: last, count: 32)), createRevision: createRevision)
    }

    private var cachePath: String { dataDir + "/cache.json" }

    // MARK: The file

    func testRoundTripKeepsConfigMappingsAndCreateRevisions() throws {
        let cache = LocalCache(config: Self.config, mappings: [Self.peer(40, createRevision: 12), Self.peer(41, createRevision: 99)])
        try cache.save(dataDir: dataDir)
        XCTAssertEqual(try LocalCache.load(dataDir: dataDir), cache)
    }

    func testALargeMapIsWrittenInChunksAndReadBackWhole() throws {
        let config = try NetworkConfig(network: IPv4Prefix(parsing: "10.99.0.0/16"), staticRange: IPv4Prefix(parsing: "10.99.0.0/28"),
                                       floatingRange: IPv4Prefix(parsing: "10.99.0.16/28"), leaseTimeSeconds: 60)
        let mappings = (0..<2000).map { index in
            let address = IPv4Address("10.99.\(index / 200).\(index % 200 + 20)")!
            return MappingUpdate(address: address, mapping: Mapping(
                machineID: String(format: "%032x", index), privateIP: address, ipv4: IPv4Address("192.0.2.1"), ipv6: nil, port: 1099,
                publicKey: [UInt8](repeating: UInt8(index % 256), count: 32)), createRevision: Int64(index + 1))
        }
        let cache = LocalCache(config: config, mappings: mappings)
        let chunks = Array(LocalCache.EncodedChunks(cache))
        XCTAssertGreaterThan(chunks.count, 4, "a 2,000-node map spans several chunks")
        for chunk in chunks { XCTAssertLessThan(chunk.count, LocalCache.EncodedChunks.chunkSize + 1024) }
        try cache.save(dataDir: dataDir)
        XCTAssertEqual(try LocalCache.load(dataDir: dataDir), cache)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: cachePath)[.size] as? Int, chunks.map { $0.count }.reduce(0, +))

        let empty = LocalCache(config: config, mappings: [])
        try empty.save(dataDir: dataDir)
        XCTAssertEqual(try LocalCache.load(dataDir: dataDir), empty)
    }

    func testDeletionsAreNotCached() {
        let cache = LocalCache(config: Self.config, mappings: [
            Self.peer(40), MappingUpdate(address: IPv4Address("10.99.0.41")!, mapping: nil, createRevision: 0),
        ])
        XCTAssertEqual(cache.mappings.map(\.address), [IPv4Address("10.99.0.40")!])
    }

    func testNoFileIsNoCache() throws {
        XCTAssertNil(try LocalCache.load(dataDir: dataDir))
    }

    func testWrittenWithMode0600AndNoTemporaryLeftBehind() throws {
        try LocalCache(config: Self.config, mappings: [Self.peer(40)]).save(dataDir: dataDir)
        // A second write replaces the first whole (rename over it).
        try LocalCache(config: Self.config, mappings: [Self.peer(41)]).save(dataDir: dataDir)
        let mode = (try FileManager.default.attributesOfItem(atPath: cachePath)[.posixPermissions] as? NSNumber)?.intValue
        XCTAssertEqual(mode, 0o600)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dataDir), ["cache.json"])
        XCTAssertEqual(try LocalCache.load(dataDir: dataDir)?.mappings.map(\.address), [IPv4Address("10.99.0.41")!])
    }

    func testCorruptFilesAreRefusedNamingTheFile() throws {
        try LocalCache(config: Self.config, mappings: [Self.peer(40)]).save(dataDir: dataDir)
        let good = try String(contentsOfFile: cachePath, encoding: .utf8)
        let outside = good.replacingOccurrences(of: "10.99.0.40", with: "10.98.0.40")
        for corrupt in ["", "{", "not json at all", String(good.dropLast(20)),
                        good.replacingOccurrences(of: #""version":1"#, with: #""version":7"#), outside] {
            try corrupt.write(toFile: cachePath, atomically: false, encoding: .utf8)
            XCTAssertThrowsError(try LocalCache.load(dataDir: dataDir), corrupt) { error in
                XCTAssertTrue("\(error)".contains(cachePath), "\(error)")
            }
        }
    }

    // MARK: Coalesced writes

    func testWriterWritesAtStartThenOncePerTickOnlyAfterChanges() async throws {
        let writer = CacheWriter()
        let (ticks, tick) = AsyncStream<Void>.makeStream()
        let writes = Locked<[LocalCache]>([])
        let version = Locked(0)
        let snapshot: @Sendable () -> LocalCache = { LocalCache(config: Self.config, mappings: [Self.peer(UInt8(40 + version.withLock { $0 }))]) }
        let task = Task {
            await writer.run(ticks: ticks, logger: Logger(label: "test"), snapshot: snapshot,
                             write: { cache in writes.withLock { $0.append(cache) } })
        }
        try await eventually("the start-up write") { writes.withLock { $0.count } == 1 }
        // A burst of 100 changes between two ticks costs one write.
        for n in 1...100 {
            version.withLock { $0 = n % 50 }
            writer.markChanged()
        }
        tick.yield()
        try await eventually("one write for the burst") { writes.withLock { $0.count } == 2 }
        // Ticks without changes write nothing; the tick after a change writes once.
        tick.yield()
        tick.yield()
        writer.markChanged()
        tick.yield()
        tick.finish()
        await task.value
        XCTAssertEqual(writes.withLock { $0.count }, 3)
    }

    func testFailedWriteIsRetriedAtTheNextTick() async throws {
        let writer = CacheWriter()
        let (ticks, tick) = AsyncStream<Void>.makeStream()
        let attempts = Locked(0)
        let write: @Sendable (LocalCache) throws -> Void = { _ in
            let attempt = attempts.withLock { count in
                count += 1
                return count
            }
            if attempt == 2 { throw LocalCache.Failure(description: "disk full") }
        }
        let empty: @Sendable () -> LocalCache = { LocalCache(config: Self.config, mappings: []) }
        let task = Task {
            await writer.run(ticks: ticks, logger: Logger(label: "test"), snapshot: empty, write: write)
        }
        writer.markChanged()
        tick.yield()  // fails
        tick.yield()  // retried without a new change
        tick.yield()  // nothing left to write
        tick.finish()
        await task.value
        XCTAssertEqual(attempts.withLock { $0 }, 3)
    }

    // MARK: Start-up decision

    func testStartsFromCacheOnlyWithACacheAndARememberedAddress() {
        let cache = LocalCache(config: Self.config, mappings: [Self.peer(40)])
        let remembered = IPv4Address("10.99.0.40")!
        XCTAssertEqual(Daemon.plan(cache: cache, rememberedIP: remembered, requestedIP: nil),
                       .fromCache(cache, address: remembered))
        XCTAssertEqual(Daemon.plan(cache: cache, rememberedIP: remembered, requestedIP: remembered),
                       .fromCache(cache, address: remembered))
        XCTAssertEqual(Daemon.plan(cache: nil, rememberedIP: remembered, requestedIP: nil),
                       .waitForDatastore(reason: "no local cache"))
        XCTAssertEqual(Daemon.plan(cache: cache, rememberedIP: nil, requestedIP: nil),
                       .waitForDatastore(reason: "no remembered private address"))
        guard case .waitForDatastore(let reason) = Daemon.plan(cache: cache, rememberedIP: remembered,
                                                               requestedIP: IPv4Address("10.99.0.5")) else {
            return XCTFail("--private-ip names another address: the cache is not for it")
        }
        XCTAssertTrue(reason.contains("--private-ip 10.99.0.5"), reason)
        guard case .waitForDatastore = Daemon.plan(cache: cache, rememberedIP: IPv4Address("10.50.0.1"), requestedIP: nil) else {
            return XCTFail("an address outside the cached network cannot be used")
        }
    }

    func testOnlyUnavailabilityLeadsToTheCache() {
        let failure = DatastoreError.Failure(endpoint: "127.0.0.1:2379", reason: "connection refused")
        XCTAssertTrue(Daemon.isUnavailable(DatastoreError.unreachable([failure])))
        XCTAssertTrue(Daemon.isUnavailable(DatastoreError.badResponse(endpoint: "e", path: "/v3/kv/txn", reason: "html")))
        XCTAssertFalse(Daemon.isUnavailable(DatastoreError.authenticationFailed(endpoint: "e", message: "wrong password")))
        XCTAssertFalse(Daemon.isUnavailable(DatastoreError.http(endpoint: "e", path: "/v3/kv/txn", status: 403, message: "")))
        XCTAssertFalse(Daemon.isUnavailable(RegistryError.corruptConfig(key: "/quantum/config", problem: "bad")))
    }
}

/// A value shared with the closures under test.
private final class Locked<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
}

/// Polls `condition` until it holds or `timeout` passes; fails the test on timeout.
private func eventually(_ what: String, timeout: Duration = .seconds(5), file: StaticString = #filePath, line: UInt = #line,
                        _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    XCTFail("timed out waiting for: \(what)", file: file, line: line)
}
