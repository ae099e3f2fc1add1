import XCTest
@testable import QuantumCore

final class PacketHeaderTests: XCTestCase {
    /// A minimal IPv4 header (20 bytes) from `source` to `destination`, plus `payload` bytes.
    private func ipv4Packet(from source: [UInt8], to destination: [UInt8], payload: Int = 0) -> [UInt8] {
        var header: [UInt8] = [0x45, 0, 0, UInt8(20 + payload), 0x12, 0x34, 0x40, 0, 64, 17, 0, 0]
        header += source + destination
        return header + [UInt8](repeating: 0xAB, count: payload)
    }

    func testIPv4SourceAndDestination() {
        let packet = ipv4Packet(from: [10, 99, 4, 1], to: [10, 99, 200, 254], payload: 8)
        packet.withUnsafeBytes { raw in
            XCTAssertEqual(IPPacket.version(raw), 4)
            XCTAssertEqual(IPPacket.ipv4Source(raw), IPv4Address("10.99.4.1"))
            XCTAssertEqual(IPPacket.ipv4Destination(raw), IPv4Address("10.99.200.254"))
        }
    }

    func testExactlyTwentyBytesIsEnough() {
        let packet = ipv4Packet(from: [192, 168, 1, 2], to: [255, 255, 255, 255])
        XCTAssertEqual(packet.count, 20)
        packet.withUnsafeBytes { raw in
            XCTAssertEqual(IPPacket.ipv4Source(raw), IPv4Address("192.168.1.2"))
            XCTAssertEqual(IPPacket.ipv4Destination(raw), IPv4Address("255.255.255.255"))
        }
    }

    func testShortPacketIsNil() {
        let packet = Array(ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2]).prefix(19))
        packet.withUnsafeBytes { raw in
            XCTAssertEqual(IPPacket.version(raw), 4)
            XCTAssertNil(IPPacket.ipv4Source(raw))
            XCTAssertNil(IPPacket.ipv4Destination(raw))
        }
    }

    func testIPv6PacketIsNil() {
        var packet = [UInt8](repeating: 0, count: 40)
        packet[0] = 0x60
        packet.withUnsafeBytes { raw in
            XCTAssertEqual(IPPacket.version(raw), 6)
            XCTAssertNil(IPPacket.ipv4Source(raw))
            XCTAssertNil(IPPacket.ipv4Destination(raw))
        }
    }

    func testEmptyPacket() {
        [UInt8]().withUnsafeBytes { raw in
            XCTAssertEqual(IPPacket.version(raw), 0)
            XCTAssertNil(IPPacket.ipv4Source(raw))
            XCTAssertNil(IPPacket.ipv4Destination(raw))
        }
    }
}
