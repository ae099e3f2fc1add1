import Foundation
import XCTest
@testable import QuantumCore

/// Whatever is stored in etcd reaches `Mapping.parse` and `NetworkConfig.parse`:
/// mutated values must either parse into something valid or be refused — never crash.
final class MappingFuzzTests: XCTestCase {
    private struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    private let interesting: [UInt8] = Array("{}[]\",:0123456789.-+eE ntrufals\\/".utf8) + [0, 0xff, 0xc3]

    private func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            guard !bytes.isEmpty else { break }
            let at = Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: bytes[at] = interesting.randomElement(using: &rng)!
            case 1: bytes.remove(at: at)
            default: bytes.insert(interesting.randomElement(using: &rng)!, at: at)
            }
        }
        return bytes
    }

    func testMutatedMappingsParseValidlyOrAreRefused() {
        let valid = Mapping(machineID: String(repeating: "0f", count: 16), privateIP: IPv4Address("10.99.4.7")!,
                            ipv4: IPv4Address("192.0.2.7"), ipv6: IPv6Address("2001:db8::7"), port: 1099,
                            publicKey: Array(repeating: 7, count: 32), floating: [IPv4Address("10.99.2.1")!]).json()
        var rng = SplitMix64(state: 0xC0FFEE)
        var accepted = 0
        for _ in 0..<20_000 {
            let input = mutate(valid, &rng)
            guard let mapping = try? Mapping.parse(json: input) else { continue }
            accepted += 1
            XCTAssertEqual(mapping.machineID.count, 32)
            XCTAssertEqual(mapping.publicKey.count, 32)
            XCTAssertNotEqual(mapping.port, 0)
            XCTAssertTrue(mapping.ipv4 != nil || mapping.ipv6 != nil)
            XCTAssertEqual(try Mapping.parse(json: mapping.json()), mapping, "what parses must survive a round trip")
        }
        // Mutations of whitespace-free JSON mostly break it; the ones that survive (a digit of an
        // address or the port changed, a space inserted) must be a real share, or the loop above
        // checked nothing. Deterministic for the seed: print the figure so a drift shows.
        print("mapping mutations accepted: \(accepted) of 20000")
        XCTAssertGreaterThan(accepted, 200, "too few mutations parse: the round-trip checks ran on almost nothing")
        XCTAssertLessThan(accepted, 10_000, "most random mutations must be refused")
    }

    func testMutatedNetworkConfigsParseValidlyOrAreRefused() throws {
        let valid = try NetworkConfig(network: IPv4Prefix(parsing: "10.99.0.0/16"),
                                      staticRange: IPv4Prefix(parsing: "10.99.0.0/23"),
                                      floatingRange: IPv4Prefix(parsing: "10.99.2.0/23"),
                                      leaseTimeSeconds: 172_800).json()
        var rng = SplitMix64(state: 0xBEEF)
        var accepted = 0
        for _ in 0..<20_000 {
            guard let config = try? NetworkConfig.parse(json: mutate(valid, &rng)) else { continue }
            accepted += 1
            XCTAssertNoThrow(try config.validate())
            XCTAssertEqual(try NetworkConfig.parse(json: config.json()), config, "what parses must survive a round trip")
        }
        print("network config mutations accepted: \(accepted) of 20000")
        XCTAssertGreaterThan(accepted, 200, "too few mutations parse: the validity checks ran on almost nothing")
        XCTAssertLessThan(accepted, 10_000, "most random mutations must be refused")
    }
}
