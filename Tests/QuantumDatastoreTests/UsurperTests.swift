import QuantumCore
import QuantumDatastore
import XCTest

/// With a network CA, a mapping the CA does not vouch for at a node's address is a usurper:
/// the genuine node writes its own mapping back instead of giving the address up.
final class UsurperTests: XCTestCase {
    let store = InMemoryDatastore()
    let log = LogCapture()
    let config = Fixtures.config

    /// A registry for which machine 2's mappings are usurpers (as the CA check would say).
    func registry(caEnforced: Bool) -> NetworkRegistry {
        NetworkRegistry(store: store, prefix: "/quantum", logger: log.logger,
                        isUsurper: { holder in caEnforced && holder?.machineID != Fixtures.machineID(1) })
    }

    func testKeepAliveWritesItsMappingBackOverAUsurper() async throws {
        let registry = registry(caEnforced: true)
        let address = Fixtures.address("10.99.0.5")
        let mine = Fixtures.mapping(machine: 1)(address)
        let lease = try await registry.claim(address: address, mapping: Fixtures.mapping(machine: 1), config: config,
                                             machineID: Fixtures.machineID(1), preferred: nil)
        // The usurper overwrites the key, without a lease (as etcdctl put does).
        try await store.put(lease.key, value: Fixtures.mapping(machine: 2)(address).json(), lease: nil)
        let renewed = LeaseBox()
        let config = self.config
        let task = Task {
            try await registry.runKeepAlive(lease: lease, mapping: mine, config: config, interval: .milliseconds(10),
                                            onRenew: { renewed.set($0) })
        }
        defer { task.cancel() }
        try await eventually("the genuine node writes its mapping back under a new lease") {
            let stored = try await store.get(lease.key)
            return stored.flatMap { try? Mapping.parse(json: $0.value) } == mine && renewed.get() != nil
        }
    }

    func testClaimOverwritesAnUnreadableOrUncertifiedHolderOnlyWithTheCA() async throws {
        let address = Fixtures.address("10.99.0.6")
        try await store.put("/quantum/nodes/10.99.0.6", value: Fixtures.mapping(machine: 2)(address).json(), lease: nil)
        do {
            _ = try await registry(caEnforced: false).claim(address: address, mapping: Fixtures.mapping(machine: 1),
                                                            config: config, machineID: Fixtures.machineID(1), preferred: nil)
            XCTFail("without a CA the holder keeps the address")
        } catch let error as RegistryError {
            XCTAssertEqual(error, .addressHeld(address, machineID: Fixtures.machineID(2)))
        }
        try await store.put("/quantum/nodes/10.99.0.6", value: Array("not json".utf8), lease: nil)
        let lease = try await registry(caEnforced: true).claim(address: address, mapping: Fixtures.mapping(machine: 1),
                                                               config: config, machineID: Fixtures.machineID(1), preferred: nil)
        let stored = try await store.get(lease.key)
        XCTAssertEqual(try Mapping.parse(json: XCTUnwrap(stored).value).machineID, Fixtures.machineID(1))
    }
}

/// The newest lease handed to `onRenew` (set from the keep-alive's task).
private final class LeaseBox: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var lease: Lease?
    func set(_ new: Lease) { lock.withLock { lease = new } }
    func get() -> Lease? { lock.withLock { lease } }
}
