import XCTest

@testable import QuantumCore
@testable import QuantumDatastore

/// The mapping sync with a map of 10,000 nodes: a full listing decodes each value once, and a
/// watch event decodes only its own value and hands on only its own change.
final class MapScaleTests: XCTestCase {
    private static let count = 10_000
    private let network = Fixtures.prefix("10.99.0.0/16")

    /// The node key/value of seeded node `index` (10.99.16.1 onwards), its endpoint at `ipv4`.
    private func node(_ index: Int, ipv4: String = "192.0.2.1", modRevision: Int64? = nil) -> KeyValue {
        let address = IPv4Address(0x0A63_1001 + UInt32(index))
        var key = [UInt8](repeating: 0x42, count: 32)
        withUnsafeBytes(of: UInt32(index).littleEndian) { key.replaceSubrange(0..<4, with: $0) }
        let mapping = Mapping(machineID: Fixtures.machineID(index), privateIP: address, ipv4: IPv4Address(ipv4),
                              ipv6: nil, port: 1099, publicKey: key)
        return KeyValue(key: "/quantum/nodes/\(address)", value: mapping.json(), createRevision: Int64(index + 2),
                        modRevision: modRevision ?? Int64(index + 2), lease: 0)
    }

    func testOneChangeInAMapOfTenThousandDecodesAndDeliversOnlyItself() throws {
        let registry = NetworkRegistry(store: InMemoryDatastore(), logger: LogCapture().logger)
        let delivered = Box<[[MappingUpdate]]>([])
        let started = ContinuousClock.now
        registry.resync((0..<Self.count).map { node($0) }, network: network) { updates in delivered.update { $0.append(updates) } }
        let listing = ContinuousClock.now - started
        XCTAssertEqual(delivered.get().map(\.count), [Self.count], "the first listing delivers every node at once")
        XCTAssertEqual(registry.decodedNodeValues.load(ordering: .relaxed), Self.count)
        // Debug build, shared CI machine: the release build takes a fraction of this.
        XCTAssertLessThan(listing, .seconds(10), "decoding 10,000 mappings took \(listing)")

        // The node at index 4000 moves: one watch event.
        let moved = node(4000, ipv4: "192.0.2.200", modRevision: 20_000)
        registry.apply([.put(moved)], network: network) { updates in delivered.update { $0.append(updates) } }
        XCTAssertEqual(registry.decodedNodeValues.load(ordering: .relaxed), Self.count + 1, "only the changed value is decoded")
        let change = try XCTUnwrap(delivered.get().last)
        XCTAssertEqual(change.count, 1)
        XCTAssertEqual(change.first?.address, IPv4Address("10.99.31.161"))
        XCTAssertEqual(change.first?.mapping?.ipv4, IPv4Address("192.0.2.200"))

        // The same value again (a watch replay) decodes one value and delivers nothing.
        registry.apply([.put(moved)], network: network) { updates in delivered.update { $0.append(updates) } }
        XCTAssertEqual(delivered.get().count, 2)
        XCTAssertEqual(registry.decodedNodeValues.load(ordering: .relaxed), Self.count + 2)
        XCTAssertEqual(registry.deliveredMappings().count, Self.count)
    }

    func testAResyncOfTheMapDeliversExactlyWhatChanged() throws {
        let registry = NetworkRegistry(store: InMemoryDatastore(), logger: LogCapture().logger)
        let delivered = Box<[[MappingUpdate]]>([])
        let listing = (0..<Self.count).map { node($0) }
        registry.resync(listing, network: network) { updates in delivered.update { $0.append(updates) } }
        XCTAssertEqual(delivered.get().map(\.count), [Self.count])
        let handedOn = try XCTUnwrap(delivered.get().first?.first { $0.address == IPv4Address(0x0A63_1001 + 5) }?.mapping)

        registry.resync(listing, network: network) { updates in delivered.update { $0.append(updates) } }
        XCTAssertEqual(delivered.get().count, 1, "an unchanged listing delivers nothing")

        // Node 10 moves, node 20 leaves, a new node joins.
        var changed = listing
        changed[10] = node(10, ipv4: "192.0.2.200", modRevision: 20_000)
        changed.remove(at: 20)
        changed.append(node(Self.count))
        registry.resync(changed, network: network) { updates in delivered.update { $0.append(updates) } }
        XCTAssertEqual(delivered.get().count, 2)
        let diff = try XCTUnwrap(delivered.get().last).sorted { $0.address < $1.address }
        XCTAssertEqual(diff.map(\.address), [IPv4Address(0x0A63_1001 + 10), IPv4Address(0x0A63_1001 + 20),
                                             IPv4Address(0x0A63_1001 + UInt32(Self.count))])
        XCTAssertEqual(diff[0].mapping?.ipv4, IPv4Address("192.0.2.200"))
        XCTAssertNil(diff[1].mapping, "a vanished node is a deletion")
        XCTAssertEqual(diff[2].createRevision, Int64(Self.count + 2))
        XCTAssertEqual(registry.deliveredMappings().count, Self.count)

        registry.resync(changed, network: network) { updates in delivered.update { $0.append(updates) } }
        XCTAssertEqual(delivered.get().count, 2, "the changed listing again delivers nothing")
        let moved = try XCTUnwrap(registry.deliveredMappings().first { $0.address == IPv4Address(0x0A63_1001 + 10) })
        XCTAssertEqual(moved.mapping?.ipv4, IPv4Address("192.0.2.200"))
        // Node 5 never changed: the registry still holds the very mapping it handed on, which the
        // engine stores too, not a copy parsed by a later listing.
        let kept = try XCTUnwrap(registry.deliveredMappings().first { $0.address == IPv4Address(0x0A63_1001 + 5) }?.mapping)
        XCTAssertTrue(kept.sharesFields(with: handedOn), "resyncs keep an unchanged mapping's storage")
    }
}
