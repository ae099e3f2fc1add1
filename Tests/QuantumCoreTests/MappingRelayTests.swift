import Foundation
import XCTest
@testable import QuantumCore

/// The optional `relay` field of a mapping (`--relay`).
final class MappingRelayTests: XCTestCase {
    private let key = [UInt8](0..<32)

    private func mapping(relay: Bool) -> Mapping {
        Mapping(machineID: String(repeating: "ab", count: 16), privateIP: IPv4Address("10.99.4.7")!,
                ipv4: IPv4Address("203.0.113.5"), ipv6: nil, port: 7777, publicKey: key, relay: relay)
    }

    func testARelayPublishesTheFieldAndOthersLeaveItOut() throws {
        let relay = mapping(relay: true)
        XCTAssertEqual(try Mapping.parse(json: relay.json()), relay)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(relay.json())) as? [String: Any])
        XCTAssertEqual(object["relay"] as? Bool, true)
        XCTAssertFalse(String(decoding: mapping(relay: false).json(), as: UTF8.self).contains("relay"),
                       "a node that is no relay publishes the same bytes as before")
    }

    func testMappingsWithoutTheFieldDecodeAsNoRelay() throws {
        let old = #"{"floating":[],"ipv4":"203.0.113.5","machineID":"abababababababababababababababab","plugins":[],"# +
            #""port":7777,"privateIP":"10.99.4.7","publicKey":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}"#
        XCTAssertEqual(try Mapping.parse(json: Array(old.utf8)).relay, false)
    }

    func testANonBooleanIsRefusedNamingTheField() throws {
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(mapping(relay: false).json())) as? [String: Any])
        object["relay"] = "yes"
        let data = try JSONSerialization.data(withJSONObject: object)
        XCTAssertThrowsError(try Mapping.parse(json: Array(data))) { error in
            XCTAssertTrue(describeDecodingError(error).contains("relay"), describeDecodingError(error))
        }
    }
}
