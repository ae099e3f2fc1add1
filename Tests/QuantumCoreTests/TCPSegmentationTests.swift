import XCTest
@testable import QuantumCore

final class TCPSegmentationTests: XCTestCase {
    private typealias P = OffloadTestPackets
    private static let mtu = 1420

    /// Splits `packet` as read behind `header`; the segments' bytes, or the refusal.
    private func split(_ packet: [UInt8], _ header: VirtioNetHeader,
                       maximumPacket: Int = mtu) -> Result<[[UInt8]], TCPSegmentation.Refusal> {
        var packet = packet
        let stride = 2048
        let out = UnsafeMutableRawPointer.allocate(byteCount: stride * 64, alignment: 64)
        defer { out.deallocate() }
        let result = packet.withUnsafeMutableBytes {
            TCPSegmentation.split(header, packet: $0, maximumPacket: maximumPacket, into: out, stride: stride)
        }
        return result.map { count in
            (0..<count).map { index in
                let start = out + index * stride
                let length = Int(start.load(fromByteOffset: 2, as: UInt8.self)) << 8 | Int(start.load(fromByteOffset: 3, as: UInt8.self))
                return Array(UnsafeRawBufferPointer(start: start, count: length))
            }
        }
    }

    private func tso(_ segmentSize: Int) -> VirtioNetHeader {
        VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.GSO.tcpv4, headerLength: 52,
                        segmentSize: UInt16(segmentSize), checksumStart: 20, checksumOffset: 16)
    }

    /// Every segment equals the packet the kernel would have sent: built independently,
    /// with the sequence number, IP ID, flags and both checksums of its position.
    private func assertSplit(payloadLength: Int, segmentSize: Int, sequence: UInt32 = 1000,
                             flags: UInt8 = TCPFlags.ack | TCPFlags.psh, file: StaticString = #filePath, line: UInt = #line) {
        let payload = P.payload(payloadLength)
        let superPacket = P.tcp(sequence: sequence, flags: flags, payload: payload, id: 0xFFFE)
        guard case .success(let segments) = split(superPacket, tso(segmentSize)) else {
            return XCTFail("refused", file: file, line: line)
        }
        let expectedCount = (payloadLength + segmentSize - 1) / segmentSize
        XCTAssertEqual(segments.count, expectedCount, file: file, line: line)
        for (index, segment) in segments.enumerated() {
            var segmentFlags = flags
            if index != expectedCount - 1 { segmentFlags &= ~(TCPFlags.fin | TCPFlags.psh) }
            if index != 0 { segmentFlags &= ~TCPFlags.cwr }
            let slice = Array(payload[(index * segmentSize)..<min(payloadLength, (index + 1) * segmentSize)])
            let expected = P.tcp(sequence: sequence &+ UInt32(index * segmentSize), flags: segmentFlags, payload: slice,
                                 id: (0xFFFE + index) & 0xFFFF)
            XCTAssertEqual(segment, expected, "segment \(index)", file: file, line: line)
            XCTAssertTrue(P.ipChecksumValid(segment) && P.transportChecksumValid(segment), file: file, line: line)
        }
    }

    func testSplitsIntoFullSegmentsAndAShortLastOne() {
        assertSplit(payloadLength: 3000, segmentSize: 1368)
    }

    func testPayloadOfExactlyWholeSegments() {
        assertSplit(payloadLength: 4 * 1368, segmentSize: 1368)
    }

    func testOneByteBeyondASegmentAndOddSizes() {
        assertSplit(payloadLength: 1369, segmentSize: 1368)
        assertSplit(payloadLength: 2999, segmentSize: 1001)
        assertSplit(payloadLength: 1, segmentSize: 1368)
    }

    func testSixtyFourKilobyteSuperPacket() {
        assertSplit(payloadLength: 65_535 - 52, segmentSize: 1368)
    }

    func testFinAndPushOnlyOnTheLastSegmentCwrOnlyOnTheFirst() {
        assertSplit(payloadLength: 5000, segmentSize: 1368,
                    flags: TCPFlags.ack | TCPFlags.psh | TCPFlags.fin | TCPFlags.cwr)
    }

    func testSequenceNumbersWrapAround() {
        assertSplit(payloadLength: 5000, segmentSize: 1368, sequence: 0xFFFF_FC00)
    }

    func testCompletesAPartialTCPChecksum() {
        let complete = P.tcp(sequence: 7, payload: P.payload(333))
        var partial = complete
        let pseudo = P.referenceSum(P.pseudoHeader(complete, protocol: 6, length: complete.count - 20))
        partial[36] = UInt8(pseudo >> 8)
        partial[37] = UInt8(pseudo & 0xFF)
        let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 20, checksumOffset: 16)
        XCTAssertEqual(try split(partial, header).get(), [complete])
        // Without the flag the packet goes as it is, wrong checksum and all.
        XCTAssertEqual(try split(partial, VirtioNetHeader()).get(), [partial])
    }

    func testCompletesAPartialUDPChecksum() {
        let complete = P.udp(payload: P.payload(77))
        var partial = complete
        let pseudo = P.referenceSum(P.pseudoHeader(complete, protocol: 17, length: complete.count - 20))
        partial[26] = UInt8(pseudo >> 8)
        partial[27] = UInt8(pseudo & 0xFF)
        let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 20, checksumOffset: 6)
        XCTAssertEqual(try split(partial, header).get(), [complete])
    }

    func testSplitsAUDPSuperPacket() throws {
        let payload = P.payload(3000)
        let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.GSO.udpL4,
                                     headerLength: 28, segmentSize: 1200, checksumStart: 20, checksumOffset: 6)
        let segments = try split(P.udp(payload: payload, id: 0x10), header).get()
        XCTAssertEqual(segments, [0, 1, 2].map { index in
            P.udp(payload: Array(payload[(index * 1200)..<min(3000, (index + 1) * 1200)]), id: 0x10 + index)
        })
    }

    func testRefusesGarbage() {
        let packet = P.tcp(sequence: 1, payload: P.payload(3000))
        // Segment size 0, or segments beyond the tunnel's packet size.
        XCTAssertEqual(split(packet, tso(0)), .failure(.badSegmentSize))
        XCTAssertEqual(split(packet, tso(1369)), .failure(.badSegmentSize))
        // An ordinary packet larger than the tunnel's packet size.
        XCTAssertEqual(split(packet, VirtioNetHeader()), .failure(.badSegmentSize))
        // IP length that disagrees with what was read; a cut-off packet.
        XCTAssertEqual(split(packet + [0], tso(1368)), .failure(.malformedSuperPacket))
        XCTAssertEqual(split(Array(packet.prefix(40)), tso(1368)), .failure(.malformedSuperPacket))
        // Headers only (no payload); TCP header length beyond the packet.
        let bare = P.tcp(sequence: 1, payload: [])
        XCTAssertEqual(split(bare, tso(1368)), .failure(.malformedSuperPacket))
        var longHeader = P.tcp(sequence: 1, options: [], payload: P.payload(20))
        longHeader[32] = 0xF0
        XCTAssertEqual(split(longHeader, tso(1368)), .failure(.malformedSuperPacket))
        // TCP segmentation of a UDP packet; an IPv6 packet; a fragment; an unknown type.
        XCTAssertEqual(split(P.udp(payload: P.payload(3000)), tso(1368)), .failure(.malformedSuperPacket))
        var ipv6 = packet
        ipv6[0] = 0x60
        XCTAssertEqual(split(ipv6, tso(1368)), .failure(.malformedSuperPacket))
        var fragment = packet
        fragment[6] = 0x20
        XCTAssertEqual(split(fragment, tso(1368)), .failure(.malformedSuperPacket))
        var tcpv6 = tso(1368)
        tcpv6.gsoType = VirtioNetHeader.GSO.tcpv6
        XCTAssertEqual(split(packet, tcpv6), .failure(.malformedSuperPacket))
        // A checksum position outside the packet.
        let small = P.tcp(sequence: 1, payload: P.payload(10))
        let outside = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: UInt16(small.count - 1),
                                      checksumOffset: 0)
        XCTAssertEqual(split(small, outside), .failure(.checksumOutOfRange))
    }

    func testVirtioHeaderRoundTrip() {
        let header = VirtioNetHeader(flags: 1, gsoType: 0x81, headerLength: 52, segmentSize: 1368,
                                     checksumStart: 20, checksumOffset: 16)
        var bytes = [UInt8](repeating: 0xEE, count: VirtioNetHeader.size)
        bytes.withUnsafeMutableBytes { header.write(to: $0.baseAddress!) }
        // Little-endian fields, as a legacy virtio header on x86 and ARM.
        XCTAssertEqual(bytes, [1, 0x81, 52, 0, 0x58, 0x05, 20, 0, 16, 0])
        XCTAssertEqual(bytes.withUnsafeBytes { VirtioNetHeader(from: $0.baseAddress!) }, header)
    }
}
