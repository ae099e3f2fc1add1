import Foundation
import XCTest
@testable import QuantumCore

final class MappingTests: XCTestCase {
    private let machineID = "0123456789abcdef0123456789ABCDEF"
    private let key = [UInt8](0..<32)

    private func sample() -> Mapping {
        Mapping(machineID: machineID, privateIP: IPv4Address("10.99.4.7")!, ipv4: IPv4Address("203.0.113.5"),
                ipv6: IPv6Address("2001:db8::5"), port: 7777, publicKey: key, plugins: ["compress"],
                floating: [IPv4Address("10.99.2.1")!, IPv4Address("10.99.2.2")!],
                gatewayIP: IPv4Address("10.99.4.1"), certificate: "CERT")
    }

    /// A valid stored mapping as a JSON object, to be broken one field at a time.
    private func base() -> [String: Any] {
        ["machineID": machineID, "privateIP": "10.99.4.7", "ipv4": "203.0.113.5", "ipv6": "2001:db8::5",
         "port": 7777, "publicKey": Data(key).base64EncodedString(), "plugins": [String](), "floating": [String]()]
    }

    /// Parses `object` and returns the one-line error, or nil if it parsed.
    private func failure(_ object: [String: Any]) throws -> String? {
        let data = try JSONSerialization.data(withJSONObject: object)
        do {
            _ = try Mapping.parse(json: Array(data))
            return nil
        } catch {
            XCTAssertTrue(error is DecodingError, "\(type(of: error))")
            return describeDecodingError(error)
        }
    }

    private func changed(_ field: String, to value: Any?) -> [String: Any] {
        var object = base()
        object[field] = value
        return object
    }

    func testRoundTrip() throws {
        let mapping = sample()
        XCTAssertEqual(try Mapping.parse(json: mapping.json()), mapping)

        let minimal = Mapping(machineID: machineID, privateIP: IPv4Address("10.99.4.8")!, ipv4: nil,
                              ipv6: IPv6Address("fd00::8"), port: 1, publicKey: [UInt8](repeating: 0xff, count: 32))
        XCTAssertEqual(try Mapping.parse(json: minimal.json()), minimal)

        let v4Only = Mapping(machineID: machineID, privateIP: IPv4Address("10.99.4.9")!, ipv4: IPv4Address("198.51.100.1"),
                             ipv6: nil, port: 65535, publicKey: key)
        XCTAssertEqual(try Mapping.parse(json: v4Only.json()), v4Only)
    }

    func testStoredFieldsAndValues() throws {
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(sample().json())) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["machineID", "privateIP", "ipv4", "ipv6", "port", "publicKey", "plugins",
                                          "floating", "gatewayIP", "certificate"])
        XCTAssertEqual(object["machineID"] as? String, machineID)
        XCTAssertEqual(object["privateIP"] as? String, "10.99.4.7")
        XCTAssertEqual(object["ipv4"] as? String, "203.0.113.5")
        XCTAssertEqual(object["ipv6"] as? String, "2001:db8::5")
        XCTAssertEqual(object["port"] as? Int, 7777)
        XCTAssertEqual(object["publicKey"] as? String, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        XCTAssertEqual(object["plugins"] as? [String], ["compress"])
        XCTAssertEqual(object["floating"] as? [String], ["10.99.2.1", "10.99.2.2"])
        XCTAssertEqual(object["gatewayIP"] as? String, "10.99.4.1")
        XCTAssertEqual(object["certificate"] as? String, "CERT")

        // Absent optionals are left out, and equal mappings give equal bytes.
        let bare = Mapping(machineID: machineID, privateIP: IPv4Address("10.99.4.7")!, ipv4: IPv4Address("203.0.113.5"),
                           ipv6: nil, port: 7777, publicKey: key)
        let bareObject = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bare.json())) as? [String: Any])
        XCTAssertEqual(Set(bareObject.keys), ["machineID", "privateIP", "ipv4", "port", "publicKey", "plugins", "floating"])
        XCTAssertEqual(bare.json(), bare.json())
        XCTAssertTrue(String(decoding: bare.json(), as: UTF8.self).hasPrefix("{\"floating\":[],\"ipv4\":"))
    }

    func testBaseParses() throws {
        XCTAssertNil(try failure(base()))
        // Empty strings for the optional addresses mean "absent".
        XCTAssertNil(try failure(changed("ipv6", to: "")))
        var object = base()
        object["plugins"] = nil
        object["floating"] = nil
        let data = try JSONSerialization.data(withJSONObject: object)
        let parsed = try Mapping.parse(json: Array(data))
        XCTAssertEqual(parsed.plugins, [])
        XCTAssertEqual(parsed.floating, [])
        XCTAssertEqual(parsed.publicKey, key)
        XCTAssertEqual(parsed.port, 7777)
    }

    func testRejectsBadMachineID() throws {
        XCTAssertEqual(try failure(changed("machineID", to: "xyz")), "field 'machineID': 'xyz' is not 32 hex digits")
        let short = String(machineID.dropLast())
        XCTAssertEqual(try failure(changed("machineID", to: short)), "field 'machineID': '\(short)' is not 32 hex digits")
        let notHex = String(machineID.dropLast()) + "g"
        XCTAssertEqual(try failure(changed("machineID", to: notHex)), "field 'machineID': '\(notHex)' is not 32 hex digits")
        // Character.isHexDigit also accepts fullwidth forms; a machine ID is ASCII only.
        let fullwidth = String(machineID.dropLast()) + "\u{FF10}"
        XCTAssertEqual(try failure(changed("machineID", to: fullwidth)),
                       "field 'machineID': '\(fullwidth)' is not 32 hex digits")
        XCTAssertEqual(try failure(changed("machineID", to: nil)), "field 'machineID' is missing")
        XCTAssertEqual(try failure(changed("machineID", to: 42)), "field 'machineID' has the wrong type")
    }

    func testRejectsBadAddresses() throws {
        XCTAssertEqual(try failure(changed("privateIP", to: "10.99.4")), "field 'privateIP': '10.99.4' is not an IPv4 address")
        XCTAssertEqual(try failure(changed("privateIP", to: nil)), "field 'privateIP': missing")
        XCTAssertEqual(try failure(changed("privateIP", to: "")), "field 'privateIP': missing")
        XCTAssertEqual(try failure(changed("ipv4", to: "300.1.1.1")), "field 'ipv4': '300.1.1.1' is not an IPv4 address")
        XCTAssertEqual(try failure(changed("ipv6", to: "2001:db8::zz")), "field 'ipv6': '2001:db8::zz' is not an IPv6 address")
        XCTAssertEqual(try failure(changed("ipv6", to: "1.2.3.4")), "field 'ipv6': '1.2.3.4' is not an IPv6 address")
        XCTAssertEqual(try failure(changed("gatewayIP", to: "gw")), "field 'gatewayIP': 'gw' is not an IPv4 address")
        XCTAssertEqual(try failure(changed("floating", to: ["10.99.2.1", "10.99.2.300"])),
                       "field 'floating': '10.99.2.300' is not an IPv4 address")
    }

    func testCandidatesRoundTripAndAreValidated() throws {
        var mapping = sample()
        mapping.candidates = [IPv4Endpoint("198.51.100.7:40001")!, IPv4Endpoint("203.0.113.9:1")!]
        XCTAssertEqual(try Mapping.parse(json: mapping.json()), mapping)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(mapping.json())) as? [String: Any])
        XCTAssertEqual(object["candidates"] as? [String], ["198.51.100.7:40001", "203.0.113.9:1"])
        // A mapping without the field (as older nodes write it) has none.
        XCTAssertEqual(try Mapping.parse(json: Array(JSONSerialization.data(withJSONObject: base()))).candidates, [])
        XCTAssertNil(try failure(changed("candidates", to: [String]())))
        for bad in ["198.51.100.7", "198.51.100.7:0", "198.51.100.7:65536", "[2001:db8::1]:5", "host:80", ":80"] {
            XCTAssertEqual(try failure(changed("candidates", to: ["192.0.2.1:5", bad])),
                           "field 'candidates': '\(bad)' is not an IPv4 address:port")
        }
        let many = (1...Mapping.candidateLimit + 1).map { "192.0.2.\($0):5" }
        XCTAssertEqual(try failure(changed("candidates", to: many)),
                       "field 'candidates': \(many.count) candidates, at most \(Mapping.candidateLimit) allowed")
        XCTAssertEqual(try failure(changed("candidates", to: "192.0.2.1:5")), "field 'candidates' has the wrong type")
    }

    func testRejectsNoEndpoint() throws {
        var object = base()
        object["ipv4"] = nil
        object["ipv6"] = nil
        XCTAssertEqual(try failure(object), "field 'ipv4': the mapping has neither ipv4 nor ipv6")
        object["ipv4"] = ""
        object["ipv6"] = ""
        XCTAssertEqual(try failure(object), "field 'ipv4': the mapping has neither ipv4 nor ipv6")
    }

    func testRejectsBadPort() throws {
        XCTAssertEqual(try failure(changed("port", to: 0)), "field 'port': 0 is not a port number")
        XCTAssertEqual(try failure(changed("port", to: 70000)), "field 'port': 70000 is not a port number")
        XCTAssertEqual(try failure(changed("port", to: 65536)), "field 'port': 65536 is not a port number")
        XCTAssertEqual(try failure(changed("port", to: -1)), "field 'port': -1 is not a port number")
        XCTAssertEqual(try failure(changed("port", to: nil)), "field 'port' is missing")
        XCTAssertEqual(try failure(changed("port", to: "7777")), "field 'port' has the wrong type")
        XCTAssertNil(try failure(changed("port", to: 65535)))
        XCTAssertNil(try failure(changed("port", to: 1)))
    }

    func testRejectsBadKey() throws {
        let message = "field 'publicKey': not a base64 32-byte Curve25519 key"
        XCTAssertEqual(try failure(changed("publicKey", to: Data(key.dropLast()).base64EncodedString())), message)
        XCTAssertEqual(try failure(changed("publicKey", to: Data(key + [0]).base64EncodedString())), message)
        XCTAssertEqual(try failure(changed("publicKey", to: "not base64!!")), message)
        XCTAssertEqual(try failure(changed("publicKey", to: "")), message)
        XCTAssertEqual(try failure(changed("publicKey", to: nil)), "field 'publicKey' is missing")
    }

    func testRejectsNonJSON() {
        XCTAssertThrowsError(try Mapping.parse(json: Array("{".utf8))) { error in
            XCTAssertEqual(describeDecodingError(error), "not valid JSON")
        }
        XCTAssertThrowsError(try Mapping.parse(json: [])) { error in
            XCTAssertEqual(describeDecodingError(error), "not valid JSON")
        }
    }

    func testDescribeNonDecodingError() {
        XCTAssertEqual(describeDecodingError(NetworkConfig.Invalid(description: "some reason")), "some reason")
    }
}
