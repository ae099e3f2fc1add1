import XCTest
@testable import QuantumCore

final class IPv4AddressTests: XCTestCase {
    func testParsesDottedQuad() {
        XCTAssertEqual(IPv4Address("10.99.0.1")?.value, 0x0A63_0001)
        XCTAssertEqual(IPv4Address("0.0.0.0")?.value, 0)
        XCTAssertEqual(IPv4Address("255.255.255.255")?.value, 0xFFFF_FFFF)
        XCTAssertEqual(IPv4Address("192.168.1.200")?.value, 0xC0A8_01C8)
        XCTAssertEqual(IPv4Address("10.99.0.1"[...])?.value, 0x0A63_0001, "accepts a Substring")
    }

    func testPrintsDottedQuad() {
        XCTAssertEqual(IPv4Address(0x0A63_0001).description, "10.99.0.1")
        XCTAssertEqual(IPv4Address(0).description, "0.0.0.0")
        XCTAssertEqual(IPv4Address(0xFFFF_FFFF).description, "255.255.255.255")
        XCTAssertEqual(IPv4Address(0xC0A8_01C8).description, "192.168.1.200")
        for text in ["1.2.3.4", "172.16.254.3", "100.64.0.0"] {
            XCTAssertEqual(IPv4Address(text)?.description, text)
        }
    }

    func testLeadingZerosAreReadAsDecimal() {
        // The parser accepts up to three decimal digits per field; leading zeros are
        // decimal (not inet_aton's octal), and printing normalises them away.
        XCTAssertEqual(IPv4Address("01.2.3.4"), IPv4Address("1.2.3.4"))
        XCTAssertEqual(IPv4Address("010.001.000.009")?.description, "10.1.0.9")
        XCTAssertNil(IPv4Address("0001.2.3.4"), "more than three digits")
    }

    func testRejects() {
        for text in ["", "1.2.3", "256.0.0.1", "1.2.3.256", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4.5",
                     "1..2.3", ".1.2.3", "1.2.3.", "a.b.c.d", "-1.2.3.4", "+1.2.3.4", "1.2.3.4/32",
                     "1,2,3,4", "::1", "1.2.3.٤", "4294967295"] {
            XCTAssertNil(IPv4Address(text), "'\(text)' should not parse")
        }
    }

    func testFlags() {
        XCTAssertTrue(IPv4Address("127.0.0.1")!.isLoopback)
        XCTAssertTrue(IPv4Address("127.255.255.254")!.isLoopback)
        XCTAssertFalse(IPv4Address("128.0.0.1")!.isLoopback)
        XCTAssertFalse(IPv4Address("126.255.255.255")!.isLoopback)
        XCTAssertTrue(IPv4Address("169.254.0.1")!.isLinkLocal)
        XCTAssertTrue(IPv4Address("169.254.255.255")!.isLinkLocal)
        XCTAssertFalse(IPv4Address("169.255.0.1")!.isLinkLocal)
        XCTAssertFalse(IPv4Address("169.253.0.1")!.isLinkLocal)
        XCTAssertTrue(IPv4Address("0.0.0.0")!.isUnspecified)
        XCTAssertFalse(IPv4Address("0.0.0.1")!.isUnspecified)
        let plain = IPv4Address("10.99.0.1")!
        XCTAssertFalse(plain.isLoopback || plain.isLinkLocal || plain.isUnspecified)
    }

    func testOrdering() {
        XCTAssertLessThan(IPv4Address("10.99.0.255")!, IPv4Address("10.99.1.0")!)
        XCTAssertLessThan(IPv4Address("9.255.255.255")!, IPv4Address("10.0.0.0")!)
        XCTAssertEqual([IPv4Address("10.0.0.2")!, IPv4Address("10.0.0.1")!].sorted().map(\.description),
                       ["10.0.0.1", "10.0.0.2"])
    }
}

final class IPv6AddressTests: XCTestCase {
    func testParsesAndPrintsCanonicalForms() {
        let cases: [(String, String)] = [
            ("fd00::1", "fd00::1"),
            ("::", "::"),
            ("::1", "::1"),
            ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
            ("2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"),
            ("fe80::", "fe80::"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::ffff:0102:0304", "::ffff:1.2.3.4"),
        ]
        for (input, printed) in cases {
            XCTAssertEqual(IPv6Address(input)?.description, printed, input)
        }
    }

    func testBytes() {
        XCTAssertEqual(IPv6Address("fd00::1")?.bytes, [0xfd, 0] + [UInt8](repeating: 0, count: 13) + [1])
        XCTAssertEqual(IPv6Address("::ffff:1.2.3.4")?.bytes,
                       [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 1, 2, 3, 4])
        XCTAssertEqual(IPv6Address(bytes: [UInt8](repeating: 0, count: 15) + [1])?.description, "::1")
        XCTAssertNil(IPv6Address(bytes: [UInt8](repeating: 0, count: 15)))
        XCTAssertNil(IPv6Address(bytes: [UInt8](repeating: 0, count: 17)))
        XCTAssertEqual(IPv6Address("2001:db8::1"), IPv6Address("2001:0DB8:0:0::1"))
    }

    func testRejects() {
        for text in ["", "1.2.3.4", ":::", "fd00::1::2", "12345::", "g::1", "1:2:3:4:5:6:7:8:9",
                     " ::1", "::1 ", "fe80::1%lo", "[::1]"] {
            XCTAssertNil(IPv6Address(text), "'\(text)' should not parse")
        }
    }

    func testFlags() {
        XCTAssertTrue(IPv6Address("::1")!.isLoopback)
        XCTAssertFalse(IPv6Address("::2")!.isLoopback)
        XCTAssertFalse(IPv6Address("::")!.isLoopback)
        XCTAssertTrue(IPv6Address("::")!.isUnspecified)
        XCTAssertFalse(IPv6Address("::1")!.isUnspecified)
        XCTAssertTrue(IPv6Address("fe80::1")!.isLinkLocal)
        XCTAssertTrue(IPv6Address("febf:ffff::1")!.isLinkLocal)
        XCTAssertFalse(IPv6Address("fec0::1")!.isLinkLocal)
        XCTAssertFalse(IPv6Address("fe7f::1")!.isLinkLocal)
        XCTAssertFalse(IPv6Address("fd00::1")!.isLinkLocal)
    }
}

final class IPv4PrefixTests: XCTestCase {
    private func prefix(_ text: String) -> IPv4Prefix { try! IPv4Prefix(parsing: text) }

    func testParses() throws {
        let p = try IPv4Prefix(parsing: "10.99.0.0/16")
        XCTAssertEqual(p.network, IPv4Address("10.99.0.0"))
        XCTAssertEqual(p.length, 16)
        XCTAssertEqual(p.description, "10.99.0.0/16")
        XCTAssertEqual(p.mask, 0xFFFF_0000)
        XCTAssertEqual(p.last, IPv4Address("10.99.255.255"))
        XCTAssertEqual(p.size, 65536)
    }

    func testHostBitsSetSuggestsTheNetwork() {
        XCTAssertThrowsError(try IPv4Prefix(parsing: "10.99.0.1/16")) { error in
            XCTAssertEqual(error as? IPv4Prefix.ParseError,
                           .hostBitsSet("10.99.0.1/16", suggested: "10.99.0.0/16"))
            XCTAssertEqual("\(error)", "'10.99.0.1/16' has host bits set (did you mean 10.99.0.0/16?)")
        }
        XCTAssertThrowsError(try IPv4Prefix(parsing: "192.168.7.77/28")) { error in
            XCTAssertEqual(error as? IPv4Prefix.ParseError,
                           .hostBitsSet("192.168.7.77/28", suggested: "192.168.7.64/28"))
        }
        XCTAssertThrowsError(try IPv4Prefix(parsing: "1.2.3.4/0")) { error in
            XCTAssertEqual(error as? IPv4Prefix.ParseError, .hostBitsSet("1.2.3.4/0", suggested: "0.0.0.0/0"))
        }
        XCTAssertThrowsError(try IPv4Prefix(network: IPv4Address("10.0.0.1")!, length: 8)) { error in
            XCTAssertEqual(error as? IPv4Prefix.ParseError, .hostBitsSet("10.0.0.1/8", suggested: "10.0.0.0/8"))
        }
    }

    func testZeroAndThirtyTwo() throws {
        let all = try IPv4Prefix(parsing: "0.0.0.0/0")
        XCTAssertEqual(all.mask, 0)
        XCTAssertEqual(all.size, 1 << 32)
        XCTAssertEqual(all.last, IPv4Address("255.255.255.255"))
        XCTAssertTrue(all.contains(IPv4Address("203.0.113.9")!))
        XCTAssertTrue(all.contains(prefix("10.99.0.0/16")))

        let host = try IPv4Prefix(parsing: "10.99.0.7/32")
        XCTAssertEqual(host.mask, 0xFFFF_FFFF)
        XCTAssertEqual(host.size, 1)
        XCTAssertEqual(host.last, IPv4Address("10.99.0.7"))
        XCTAssertTrue(host.contains(IPv4Address("10.99.0.7")!))
        XCTAssertFalse(host.contains(IPv4Address("10.99.0.6")!))
        XCTAssertFalse(host.contains(IPv4Address("10.99.0.8")!))
    }

    func testMalformed() {
        for text in ["", "10.99.0.0", "10.99.0.0/", "/16", "10.99.0.0/33", "10.99.0.0/-1", "10.99.0.0/+8",
                     "10.99.0.0/16/1", "10.99.0.0/ 16", " 10.99.0.0/16", "10.99.0/16", "10.99.0.0/x",
                     "10.99.0.0/99999999999999999999"] {
            XCTAssertThrowsError(try IPv4Prefix(parsing: text), "'\(text)'") { error in
                XCTAssertEqual(error as? IPv4Prefix.ParseError, .malformed(text))
            }
        }
        XCTAssertEqual("\(IPv4Prefix.ParseError.malformed("x"))", "'x' is not an IPv4 prefix like 10.99.0.0/16")
    }

    func testMasks() {
        XCTAssertEqual(IPv4Prefix.mask(0), 0)
        XCTAssertEqual(IPv4Prefix.mask(1), 0x8000_0000)
        XCTAssertEqual(IPv4Prefix.mask(24), 0xFFFF_FF00)
        XCTAssertEqual(IPv4Prefix.mask(31), 0xFFFF_FFFE)
        XCTAssertEqual(IPv4Prefix.mask(32), 0xFFFF_FFFF)
    }

    func testContainsAddress() {
        let p = prefix("10.99.4.0/23")
        XCTAssertTrue(p.contains(IPv4Address("10.99.4.0")!))
        XCTAssertTrue(p.contains(IPv4Address("10.99.5.255")!))
        XCTAssertFalse(p.contains(IPv4Address("10.99.3.255")!))
        XCTAssertFalse(p.contains(IPv4Address("10.99.6.0")!))
        XCTAssertEqual(p.last, IPv4Address("10.99.5.255"))
        XCTAssertEqual(p.size, 512)
    }

    func testContainsPrefix() {
        let network = prefix("10.99.0.0/16")
        XCTAssertTrue(network.contains(prefix("10.99.0.0/23")))
        XCTAssertTrue(network.contains(prefix("10.99.255.255/32")))
        XCTAssertTrue(network.contains(network))
        XCTAssertFalse(network.contains(prefix("10.0.0.0/8")), "a larger prefix is not inside")
        XCTAssertFalse(network.contains(prefix("10.100.0.0/23")))
        XCTAssertFalse(prefix("10.99.0.0/23").contains(network))
    }

    func testOverlaps() {
        let a = prefix("10.99.0.0/23"), b = prefix("10.99.2.0/23")
        XCTAssertFalse(a.overlaps(b))
        XCTAssertFalse(b.overlaps(a))
        XCTAssertTrue(prefix("10.0.0.0/8").overlaps(prefix("10.99.0.0/16")))
        XCTAssertTrue(prefix("10.99.0.0/16").overlaps(prefix("10.0.0.0/8")))
        XCTAssertTrue(prefix("10.99.0.0/22").overlaps(b))
        XCTAssertTrue(b.overlaps(prefix("10.99.0.0/22")))
        XCTAssertTrue(a.overlaps(a))
        XCTAssertFalse(prefix("10.99.0.0/16").overlaps(prefix("10.100.0.0/16")))
        XCTAssertTrue(prefix("0.0.0.0/0").overlaps(prefix("192.168.0.1/32")))
    }
}
