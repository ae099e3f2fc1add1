import XCTest
@testable import QuantumCore

final class TCPCoalescingTests: XCTestCase {
    private typealias P = OffloadTestPackets

    /// One write to the device as the coalescer made it.
    private struct Written: Equatable {
        var header: VirtioNetHeader
        var packet: [UInt8]
        var segments: Int
    }

    /// Offers `packets` in order, then flushes; every write.
    private func coalesce(_ packets: [[UInt8]], flowCapacity: Int = 8) -> [Written] {
        let coalescer = TCPCoalescer(flowCapacity: flowCapacity)
        var written: [Written] = []
        let record: TCPCoalescer.Write = { header, packet, segments in
            written.append(Written(header: VirtioNetHeader(from: header), packet: Array(packet), segments: segments))
        }
        for packet in packets {
            packet.withUnsafeBytes { coalescer.add($0, write: record) }
        }
        coalescer.flush(write: record)
        return written
    }

    /// Segments of flow `port` from `sequence`: `sizes` payload bytes each, the last with `lastFlags`.
    private func flow(_ port: Int = 40_000, from sequence: UInt32 = 5000, sizes: [Int],
                      lastFlags: UInt8 = TCPFlags.ack) -> [[UInt8]] {
        var next = sequence
        return sizes.enumerated().map { index, size in
            defer { next &+= UInt32(size) }
            return P.tcp(sourcePort: port, sequence: next, flags: index == sizes.count - 1 ? lastFlags : TCPFlags.ack,
                         payload: P.payload(size, seed: Int(next)), id: 100 + index)
        }
    }

    /// What a joined write must be: the first segment's headers with the total length, a fresh
    /// IP checksum, PSH if the last had it, the pseudo-header sum in the TCP checksum field,
    /// and every payload in order — checked against the reference checksum code.
    private func assertJoined(_ written: Written, of segments: [[UInt8]], headerLength: Int = 52,
                              file: StaticString = #filePath, line: UInt = #line) {
        let payload = segments.flatMap { $0[headerLength...] }
        let lastFlags = segments.last![33]
        var expected = P.tcp(sourcePort: Int(segments[0][20]) << 8 | Int(segments[0][21]),
                             sequence: UInt32(segments[0][24]) << 24 | UInt32(segments[0][25]) << 16
                                 | UInt32(segments[0][26]) << 8 | UInt32(segments[0][27]),
                             flags: TCPFlags.ack | (lastFlags & TCPFlags.psh), payload: payload, id: Int(segments[0][5]) | Int(segments[0][4]) << 8)
        let pseudo = P.referenceSum(P.pseudoHeader(expected, protocol: 6, length: expected.count - 20))
        expected[36] = UInt8(pseudo >> 8)
        expected[37] = UInt8(pseudo & 0xFF)
        XCTAssertEqual(written.packet, expected, file: file, line: line)
        XCTAssertTrue(P.ipChecksumValid(written.packet), file: file, line: line)
        XCTAssertEqual(written.segments, segments.count, file: file, line: line)
        XCTAssertEqual(written.header, VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.GSO.tcpv4,
                                                       headerLength: UInt16(headerLength),
                                                       segmentSize: UInt16(segments[0].count - headerLength),
                                                       checksumStart: 20, checksumOffset: 16), file: file, line: line)
    }

    private func alone(_ packet: [UInt8]) -> Written {
        Written(header: VirtioNetHeader(), packet: packet, segments: 1)
    }

    func testJoinsConsecutiveSegmentsOfAFlow() {
        let segments = flow(sizes: [1368, 1368, 1368, 700], lastFlags: TCPFlags.ack | TCPFlags.psh)
        let written = coalesce(segments)
        guard written.count == 1 else { return XCTFail("\(written.count) writes") }
        assertJoined(written[0], of: segments)
    }

    func testOddSizesAndSequenceWrapAround() {
        let segments = flow(from: 0xFFFF_FA00, sizes: [1001, 1001, 1001, 3])
        let written = coalesce(segments)
        guard written.count == 1 else { return XCTFail("\(written.count) writes") }
        assertJoined(written[0], of: segments)
    }

    func testALoneSegmentIsWrittenUnchanged() {
        let segment = flow(sizes: [1368])
        XCTAssertEqual(coalesce(segment), [alone(segment[0])])
    }

    func testOutOfOrderSegmentsAreNotJoined() {
        let segments = flow(sizes: [1000, 1000, 1000])
        XCTAssertEqual(coalesce([segments[0], segments[2], segments[1]]),
                       [alone(segments[0]), alone(segments[2]), alone(segments[1])])
    }

    func testACorruptSegmentReachesTheKernelAloneAndInOrder() {
        var segments = flow(sizes: [1000, 1000, 1000, 1000])
        segments[2][60] ^= 0x01
        let written = coalesce(segments)
        guard written.count == 3 else { return XCTFail("\(written.count) writes") }
        assertJoined(written[0], of: Array(segments[0...1]))
        XCTAssertEqual(written[1], alone(segments[2]))
        XCTAssertEqual(written[2], alone(segments[3]))
        // A corrupt IP header checksum too.
        var badIP = flow(sizes: [1000, 1000])
        badIP[1][10] ^= 0x40
        XCTAssertEqual(coalesce(badIP), [alone(badIP[0]), alone(badIP[1])])
    }

    func testIPOptionsAreNotJoined() {
        let options: [UInt8] = [1, 1, 1, 0]
        let first = P.tcp(sequence: 1, payload: P.payload(1000), ipOptions: options)
        let second = P.tcp(sequence: 1001, payload: P.payload(1000), ipOptions: options)
        XCTAssertEqual(coalesce([first, second]), [alone(first), alone(second)])
    }

    func testInterleavedFlowsEachJoin() {
        let a = flow(40_000, sizes: [1368, 1368, 1368]), b = flow(40_001, sizes: [1368, 1368, 100])
        let c = flow(40_002, sizes: [1368])
        let udp = P.udp(payload: P.payload(50))
        let written = coalesce([a[0], b[0], c[0], a[1], udp, b[1], a[2], b[2]])
        // Other traffic goes at once; the flows when the batch ends.
        guard written.count == 4 else { return XCTFail("\(written.count) writes") }
        XCTAssertEqual(written[0], alone(udp))
        assertJoined(written[1], of: a)
        assertJoined(written[2], of: b)
        XCTAssertEqual(written[3], alone(c[0]))
    }

    func testPushOrAShortSegmentEndsTheSuperPacket() {
        let pushed = flow(sizes: [1000, 1000, 1000, 1000], lastFlags: TCPFlags.ack)
        var withPush = pushed
        withPush[1] = P.tcp(sequence: 6000, flags: TCPFlags.ack | TCPFlags.psh, payload: P.payload(1000, seed: 6000), id: 101)
        let written = coalesce(withPush)
        guard written.count == 2 else { return XCTFail("\(written.count) writes") }
        assertJoined(written[0], of: Array(withPush[0...1]))
        assertJoined(written[1], of: Array(withPush[2...3]))
        // A short segment ends it too; a larger one never joins.
        let short = flow(sizes: [1000, 500, 500])
        let shortWritten = coalesce(short)
        guard shortWritten.count == 2 else { return XCTFail("\(shortWritten.count) writes") }
        assertJoined(shortWritten[0], of: Array(short[0...1]))
        XCTAssertEqual(shortWritten[1], alone(short[2]))
        let growing = flow(sizes: [500, 1000])
        XCTAssertEqual(coalesce(growing), [alone(growing[0]), alone(growing[1])])
    }

    func testDifferentAckWindowOrOptionsAreNotJoined() {
        let first = P.tcp(sequence: 1, payload: P.payload(1000))
        for second in [P.tcp(sequence: 1001, ack: 9, payload: P.payload(1000)),
                       P.tcp(sequence: 1001, window: 77, payload: P.payload(1000)),
                       P.tcp(sequence: 1001, options: [1, 1, 8, 10, 0, 0, 0x10, 1, 0, 0, 0x20, 0], payload: P.payload(1000))] {
            XCTAssertEqual(coalesce([first, second]), [alone(first), alone(second)])
        }
    }

    func testOtherFlagsFlushTheFlowFirst() {
        let segments = flow(sizes: [1000, 1000])
        let fin = P.tcp(sequence: 7000, flags: TCPFlags.ack | TCPFlags.fin, payload: [])
        let written = coalesce(segments + [fin])
        guard written.count == 2 else { return XCTFail("\(written.count) writes") }
        assertJoined(written[0], of: segments)
        XCTAssertEqual(written[1], alone(fin))
    }

    func testStopsAtTheIPLengthLimit() {
        let segments = flow(sizes: Array(repeating: 1400, count: 50))
        let written = coalesce(segments)
        // 52 header bytes + 46 × 1400 = 64,452; one more would pass 65,535.
        guard written.map(\.segments) == [46, 4] else { return XCTFail("\(written.map(\.segments))") }
        assertJoined(written[0], of: Array(segments[0..<46]))
        assertJoined(written[1], of: Array(segments[46...]))
    }

    func testAFullTableWritesOutTheOldestFlow() {
        let a = flow(40_000, sizes: [1000, 1000]), b = flow(40_001, sizes: [1000, 1000])
        let written = coalesce([a[0], b[0], a[1], b[1]], flowCapacity: 1)
        XCTAssertEqual(written, [alone(a[0]), alone(b[0]), alone(a[1]), alone(b[1])])
    }
}
