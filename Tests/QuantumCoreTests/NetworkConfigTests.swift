import Foundation
import XCTest
@testable import QuantumCore

private func prefix(_ text: String) -> IPv4Prefix { try! IPv4Prefix(parsing: text) }
private func address(_ text: String) -> IPv4Address { IPv4Address(text)! }

/// The defaults of `quantum` (`--network`, `--network-static-range`, `--network-floating-range`, 48h).
private func defaultConfig() throws -> NetworkConfig {
    try NetworkConfig(network: prefix("10.99.0.0/16"), staticRange: prefix("10.99.0.0/23"),
                      floatingRange: prefix("10.99.2.0/23"), leaseTimeSeconds: 172_800)
}

final class NetworkConfigValidationTests: XCTestCase {
    private func assertInvalid(_ network: String, _ staticRange: String, _ floatingRange: String,
                               lease: Int64 = 300, backend: String = "udp", _ message: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try NetworkConfig(network: prefix(network), staticRange: prefix(staticRange),
                                               floatingRange: prefix(floatingRange), leaseTimeSeconds: lease,
                                               backend: backend), file: file, line: line) { error in
            XCTAssertEqual(error as? NetworkConfig.Invalid, NetworkConfig.Invalid(description: message),
                           file: file, line: line)
        }
    }

    func testDefaultIsValid() throws {
        let config = try defaultConfig()
        XCTAssertEqual(config.backend, "udp")
        XCTAssertEqual(config.leaseTimeSeconds, 172_800)
    }

    func testStaticRangeOutsideNetwork() {
        assertInvalid("10.99.0.0/16", "10.100.0.0/23", "10.99.2.0/23",
                      "static range 10.100.0.0/23 is not inside network 10.99.0.0/16")
        assertInvalid("10.99.0.0/16", "10.0.0.0/8", "10.99.2.0/23",
                      "static range 10.0.0.0/8 is not inside network 10.99.0.0/16")
    }

    func testFloatingRangeOutsideNetwork() {
        assertInvalid("10.99.0.0/16", "10.99.0.0/23", "192.168.0.0/24",
                      "floating range 192.168.0.0/24 is not inside network 10.99.0.0/16")
    }

    func testOverlappingRanges() {
        assertInvalid("10.99.0.0/16", "10.99.0.0/22", "10.99.2.0/23",
                      "static range 10.99.0.0/22 overlaps floating range 10.99.2.0/23")
        assertInvalid("10.99.0.0/16", "10.99.2.0/24", "10.99.2.0/23",
                      "static range 10.99.2.0/24 overlaps floating range 10.99.2.0/23")
    }

    func testTooSmallNetwork() throws {
        assertInvalid("10.99.0.0/31", "10.99.0.0/32", "10.99.0.1/32",
                      "network 10.99.0.0/31 is too small: use a prefix of /30 or shorter")
        assertInvalid("10.99.0.0/32", "10.99.0.0/32", "10.99.0.0/32",
                      "network 10.99.0.0/32 is too small: use a prefix of /30 or shorter")
        XCTAssertNoThrow(try NetworkConfig(network: prefix("10.99.0.0/30"), staticRange: prefix("10.99.0.0/32"),
                                           floatingRange: prefix("10.99.0.3/32"), leaseTimeSeconds: 10))
    }

    func testShortLease() {
        assertInvalid("10.99.0.0/16", "10.99.0.0/23", "10.99.2.0/23", lease: 9,
                      "lease time 9s is too short: use at least 10s")
        assertInvalid("10.99.0.0/16", "10.99.0.0/23", "10.99.2.0/23", lease: -60,
                      "lease time -60s is too short: use at least 10s")
        XCTAssertNoThrow(try NetworkConfig(network: prefix("10.99.0.0/16"), staticRange: prefix("10.99.0.0/23"),
                                           floatingRange: prefix("10.99.2.0/23"), leaseTimeSeconds: 10))
    }

    func testUnknownBackend() {
        assertInvalid("10.99.0.0/16", "10.99.0.0/23", "10.99.2.0/23", backend: "tcp",
                      "backend 'tcp' is unknown: expected 'udp'")
        assertInvalid("10.99.0.0/16", "10.99.0.0/23", "10.99.2.0/23", backend: "UDP",
                      "backend 'UDP' is unknown: expected 'udp'")
    }
}

final class NetworkConfigJSONTests: XCTestCase {
    func testStoredFieldNamesAndValues() throws {
        let json = try defaultConfig().json()
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["network", "staticRange", "floatingRange", "leaseTime", "backend"])
        XCTAssertEqual(object["network"] as? String, "10.99.0.0/16")
        XCTAssertEqual(object["staticRange"] as? String, "10.99.0.0/23")
        XCTAssertEqual(object["floatingRange"] as? String, "10.99.2.0/23")
        XCTAssertEqual(object["leaseTime"] as? Int, 172_800)
        XCTAssertEqual(object["backend"] as? String, "udp")
        let text = String(decoding: json, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("{\"backend\":\"udp\",\"floatingRange\":"), "sorted keys: \(text)")
        XCTAssertEqual(try defaultConfig().json(), json, "deterministic bytes")
    }

    func testRoundTrip() throws {
        let config = try NetworkConfig(network: prefix("172.16.0.0/12"), staticRange: prefix("172.16.0.0/16"),
                                       floatingRange: prefix("172.31.255.0/24"), leaseTimeSeconds: 3600)
        XCTAssertEqual(try NetworkConfig.parse(json: config.json()), config)
        XCTAssertEqual(try NetworkConfig.parse(json: defaultConfig().json()), try defaultConfig())
    }

    func testParsesHandWrittenJSONAndDefaultsBackend() throws {
        let json = #"{"network":"10.99.0.0/16","staticRange":"10.99.0.0/23","floatingRange":"10.99.2.0/23","leaseTime":172800}"#
        XCTAssertEqual(try NetworkConfig.parse(json: Array(json.utf8)), try defaultConfig())
    }

    func testParseNamesTheBadField() {
        func message(_ json: String) -> String? {
            do {
                _ = try NetworkConfig.parse(json: Array(json.utf8))
                return nil
            } catch {
                return describeDecodingError(error)
            }
        }
        XCTAssertEqual(message(#"{"network":"10.99.0.1/16","staticRange":"10.99.0.0/23","floatingRange":"10.99.2.0/23","leaseTime":60}"#),
                       "field 'network': '10.99.0.1/16' has host bits set (did you mean 10.99.0.0/16?)")
        XCTAssertEqual(message(#"{"network":"10.99.0.0/16","staticRange":"nope","floatingRange":"10.99.2.0/23","leaseTime":60}"#),
                       "field 'staticRange': 'nope' is not an IPv4 prefix like 10.99.0.0/16")
        XCTAssertEqual(message(#"{"network":"10.99.0.0/16","staticRange":"10.99.0.0/23","floatingRange":"10.99.2.0/23"}"#),
                       "field 'leaseTime' is missing")
        XCTAssertEqual(message(#"{"network":"10.99.0.0/16","staticRange":"10.99.0.0/23","floatingRange":"10.99.2.0/23","leaseTime":"48h"}"#),
                       "field 'leaseTime' has the wrong type")
        XCTAssertEqual(message("{"), "not valid JSON")
        // Decoded fine but refused by validation: the Invalid description comes through unchanged.
        XCTAssertEqual(message(#"{"network":"10.99.0.0/16","staticRange":"10.99.0.0/23","floatingRange":"10.99.2.0/23","leaseTime":5}"#),
                       "lease time 5s is too short: use at least 10s")
        XCTAssertEqual(message(#"{"network":"10.99.0.0/16","staticRange":"10.99.0.0/23","floatingRange":"10.99.2.0/23","leaseTime":60,"backend":"wg"}"#),
                       "backend 'wg' is unknown: expected 'udp'")
    }
}

final class AddressCandidateTests: XCTestCase {
    func testCandidateRulesOnDefaultNetwork() throws {
        let config = try defaultConfig()
        // (address, dynamic, static)
        let cases: [(String, Bool, Bool)] = [
            ("10.99.0.0", false, false),     // network address
            ("10.99.255.255", false, false), // broadcast
            ("10.99.0.1", false, true),      // static range
            ("10.99.1.255", false, true),    // static range, last
            ("10.99.2.0", false, false),     // floating range
            ("10.99.3.255", false, false),   // floating range, last
            ("10.99.4.0", true, true),
            ("10.99.255.254", true, true),
            ("10.100.0.1", false, false),    // outside
            ("10.98.255.255", false, false), // outside
        ]
        for (text, dynamic, isStatic) in cases {
            XCTAssertEqual(config.isDynamicCandidate(address(text)), dynamic, "dynamic \(text)")
            XCTAssertEqual(config.isStaticCandidate(address(text)), isStatic, "static \(text)")
        }
    }

    func testDynamicCandidatesOnDefaultNetwork() throws {
        let config = try defaultConfig()
        XCTAssertEqual(Array(config.dynamicCandidates(excluding: []).prefix(3)),
                       [address("10.99.4.0"), address("10.99.4.1"), address("10.99.4.2")])
        XCTAssertEqual(Array(config.dynamicCandidates(excluding: [address("10.99.4.0"), address("10.99.4.2")]).prefix(3)),
                       [address("10.99.4.1"), address("10.99.4.3"), address("10.99.4.4")])
        let all = Array(config.dynamicCandidates(excluding: []))
        // 65536 minus static and floating (10.99.0.0-10.99.3.255, which holds the network address) and the broadcast.
        XCTAssertEqual(all.count, 65536 - 1024 - 1)
        XCTAssertEqual(all.first, address("10.99.4.0"))
        XCTAssertEqual(all.last, address("10.99.255.254"))
        XCTAssertEqual(all, all.sorted(), "lowest first")
        XCTAssertFalse(all.contains { config.staticRange.contains($0) || config.floatingRange.contains($0) })
        XCTAssertFalse(all.contains(address("10.99.0.0")) || all.contains(address("10.99.255.255")))
    }

    func testDynamicCandidatesOnSmallNetwork() throws {
        // 192.168.7.0/28: .0 network, .15 broadcast, .0-.3 static, .4-.5 floating.
        let config = try NetworkConfig(network: prefix("192.168.7.0/28"), staticRange: prefix("192.168.7.0/30"),
                                       floatingRange: prefix("192.168.7.4/31"), leaseTimeSeconds: 60)
        XCTAssertEqual(Array(config.dynamicCandidates(excluding: [])).map(\.description),
                       (6...14).map { "192.168.7.\($0)" })
        XCTAssertEqual(Array(config.dynamicCandidates(excluding: [address("192.168.7.6"), address("192.168.7.9")]))
                        .map(\.description),
                       ["192.168.7.7", "192.168.7.8"] + (10...14).map { "192.168.7.\($0)" })
        let everything = Set((0...15).map { address("192.168.7.\($0)") })
        XCTAssertEqual(Array(config.dynamicCandidates(excluding: everything)), [])
    }

    func testDynamicCandidatesWhenRangesSitAtTheEnds() throws {
        // Static and floating at the top, so the first candidate is right after the network address.
        let config = try NetworkConfig(network: prefix("10.0.0.0/29"), staticRange: prefix("10.0.0.4/31"),
                                       floatingRange: prefix("10.0.0.6/31"), leaseTimeSeconds: 60)
        XCTAssertEqual(Array(config.dynamicCandidates(excluding: [])).map(\.description),
                       ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
        let slash30 = try NetworkConfig(network: prefix("10.0.0.0/30"), staticRange: prefix("10.0.0.0/32"),
                                        floatingRange: prefix("10.0.0.3/32"), leaseTimeSeconds: 60)
        XCTAssertEqual(Array(slash30.dynamicCandidates(excluding: [])).map(\.description), ["10.0.0.1", "10.0.0.2"])
    }
}
