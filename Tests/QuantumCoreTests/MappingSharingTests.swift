import Foundation
import XCTest
@testable import QuantumCore

/// A mapping is one pointer to fields shared by all its copies: writing a copy gives it fields
/// of its own and leaves the others as they were.
final class MappingSharingTests: XCTestCase {
    private func sample() -> Mapping {
        Mapping(machineID: String(repeating: "ab", count: 16), privateIP: IPv4Address("10.99.4.7")!,
                ipv4: IPv4Address("203.0.113.5"), ipv6: IPv6Address("2001:db8::5"), port: 7777,
                publicKey: [UInt8](0..<32), plugins: ["compression"], floating: [IPv4Address("10.99.2.1")!],
                gatewayIP: IPv4Address("10.99.4.1"), certificate: "CERT", relay: true)
    }

    func testAMappingIsOnePointerInline() {
        XCTAssertEqual(MemoryLayout<Mapping>.size, MemoryLayout<UnsafeRawPointer>.size)
    }

    func testWritingACopyLeavesTheOriginalUnchanged() {
        let original = sample()
        var copy = original
        copy.port = 1099
        copy.candidates.append(IPv4Endpoint("198.51.100.7:1099")!)
        copy.ipv6 = nil
        XCTAssertEqual(original, sample())
        XCTAssertEqual(original.port, 7777)
        XCTAssertEqual(original.candidates, [])
        XCTAssertEqual(original.ipv6, IPv6Address("2001:db8::5"))
        XCTAssertEqual(copy.port, 1099)
        XCTAssertEqual(copy.candidates, [IPv4Endpoint("198.51.100.7:1099")!])
        XCTAssertNil(copy.ipv6)
        XCTAssertNotEqual(copy, original)
    }

    func testEqualFieldsAreEqualWhateverTheirStorage() {
        XCTAssertEqual(sample(), sample(), "two separately built mappings")
        var copy = sample()
        copy.port = 1
        XCTAssertNotEqual(copy, sample())
        copy.port = 7777
        XCTAssertEqual(copy, sample(), "written back to the same value")
        XCTAssertEqual(try Mapping.parse(json: sample().json()), sample(), "a parsed one")
    }

    func testJSONOfAWrittenCopy() throws {
        let original = sample()
        var copy = original
        copy.candidates = [IPv4Endpoint("198.51.100.7:1099")!]
        copy.relay = false
        XCTAssertEqual(try Mapping.parse(json: copy.json()), copy)
        XCTAssertEqual(try Mapping.parse(json: copy.json()).json(), copy.json(), "byte-equal after a round trip")
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(copy.json())) as? [String: Any])
        XCTAssertEqual(object["candidates"] as? [String], ["198.51.100.7:1099"])
        XCTAssertNil(object["relay"])
        XCTAssertEqual(try Mapping.parse(json: original.json()), sample(), "the original's JSON is unchanged")
    }

    func testPrintingShowsTheFieldsNotTheBox() {
        let text = String(describing: sample())
        XCTAssertTrue(text.hasPrefix("Mapping(machineID: \"abababababababababababababababab\", privateIP: 10.99.4.7,"), text)
        XCTAssertTrue(text.contains("port: 7777"), text)
    }
}
