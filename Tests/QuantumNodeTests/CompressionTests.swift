import QuantumCore
import QuantumCrypto
import QuantumDevice
import XCTest

@testable import QuantumNode

/// The compression plugin on the data path: negotiated per peer from the mappings, used
/// only when it shrinks a packet, flagged in the authenticated header, bounded on receipt.
final class CompressionTests: XCTestCase {
    private var network: SimulatedNetwork!

    override func setUp() {
        super.setUp()
        network = SimulatedNetwork()
    }

    /// Two nodes that have shaken hands (a's first packet started the handshake).
    private func pair(aCompresses: Bool, bCompresses: Bool, bAdvertises: [String]? = nil)
        -> (SimulatedNode, SimulatedNode) {
        let a = network.addNode("10.99.0.1", compression: aCompresses)
        let b = network.addNode("10.99.0.2", compression: bCompresses, advertised: bAdvertises)
        network.connectAll()
        a.send(to: b.address)
        network.settle()
        XCTAssertEqual(b.delivered.count, 1, "the handshake completed and the first packet crossed")
        b.delivered.removeAll()
        return (a, b)
    }

    /// What `a` puts on the wire for one packet to `b` (sealed as a worker would, not sent).
    private func sealed(from a: SimulatedNode, to b: SimulatedNode, payload: [UInt8]) -> (packet: [UInt8], wire: [UInt8]) {
        let packet = ipv4Packet(from: a.address, to: b.address, payload: payload)
        var buffer = [UInt8](repeating: 0, count: packet.count + WireFormat.transportOverhead)
        buffer.replaceSubrange(WireFormat.transportHeaderSize..<WireFormat.transportHeaderSize + packet.count, with: packet)
        let length = buffer.withUnsafeMutableBytes {
            a.path.seal($0.baseAddress!, length: packet.count, table: a.table, now: network.clock.now())?.length
        }
        XCTAssertNotNil(length, "a has a session with b")
        return (packet, Array(buffer[0..<(length ?? 0)]))
    }

    private func deliver(_ wire: [UInt8], from a: SimulatedNode, to b: SimulatedNode) {
        b.receive(.init(bytes: wire, source: a.endpoint, destination: b.endpoint))
    }

    private func count(_ node: SimulatedNode, _ name: WorkerCounter) -> UInt64 {
        node.path.counters.value(name)
    }

    private static let text = Array(String(repeating: "GET /index.html HTTP/1.1 Host: example.org ", count: 30).utf8)

    func testCompressiblePacketTravelsSmallerAndArrivesIdentical() {
        let (a, b) = pair(aCompresses: true, bCompresses: true)
        let (packet, wire) = sealed(from: a, to: b, payload: Self.text)
        XCTAssertEqual(wire[1], TransportFlags.compressed)
        XCTAssertLessThan(wire.count, (packet.count + WireFormat.transportOverhead) / 4, "text shrinks a lot")
        deliver(wire, from: a, to: b)
        XCTAssertEqual(b.delivered, [packet])
        XCTAssertEqual(count(b, .dropCompression), 0)
    }

    func testIncompressiblePacketIsSentAsItIs() {
        let (a, b) = pair(aCompresses: true, bCompresses: true)
        var generator = SystemRandomNumberGenerator()
        let noise = (0..<1200).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let (packet, wire) = sealed(from: a, to: b, payload: noise)
        XCTAssertEqual(wire[1], 0, "not flagged compressed")
        XCTAssertEqual(wire.count, packet.count + WireFormat.transportOverhead)
        deliver(wire, from: a, to: b)
        XCTAssertEqual(b.delivered, [packet])
    }

    func testNoCompressionUnlessBothAdvertiseIt() {
        for (aCompresses, bCompresses) in [(true, false), (false, true), (false, false)] {
            network = SimulatedNetwork()
            let (a, b) = pair(aCompresses: aCompresses, bCompresses: bCompresses)
            let (packet, wire) = sealed(from: a, to: b, payload: Self.text)
            XCTAssertEqual(wire[1], 0, "a=\(aCompresses) b=\(bCompresses)")
            XCTAssertEqual(wire.count, packet.count + WireFormat.transportOverhead)
            deliver(wire, from: a, to: b)
            XCTAssertEqual(b.delivered, [packet])
        }
    }

    func testCompressedPacketFromPeerThatDidNotNegotiateIsDroppedAndCounted() {
        // b advertises compression but does not offer it itself: a compresses, b refuses.
        let (a, b) = pair(aCompresses: true, bCompresses: false, bAdvertises: [Plugin.compression.rawValue])
        let (_, wire) = sealed(from: a, to: b, payload: Self.text)
        XCTAssertEqual(wire[1], TransportFlags.compressed)
        deliver(wire, from: a, to: b)
        XCTAssertEqual(b.delivered, [])
        XCTAssertEqual(count(b, .dropCompression), 1)
    }

    func testTamperedFlagsFailAuthentication() {
        let (a, b) = pair(aCompresses: true, bCompresses: true)
        for (payload, flip) in [(Self.text, UInt8(0)), ([1, 2, 3], TransportFlags.compressed)] {
            var (_, wire) = sealed(from: a, to: b, payload: payload)
            wire[1] ^= TransportFlags.compressed
            XCTAssertEqual(wire[1], flip)
            deliver(wire, from: a, to: b)
        }
        XCTAssertEqual(b.delivered, [])
        XCTAssertEqual(count(b, .dropAuth), 2)
    }

    func testAuthenticGarbageOrBombIsDroppedAndCounted() throws {
        let (a, b) = pair(aCompresses: true, bCompresses: true)
        let session = try XCTUnwrap(a.table.routes[b.address]?.session)
        // A valid LZ4 block of 64 KiB of zeros: far more than the 1420-byte packet limit.
        let bomb = lz4Block(of: [UInt8](repeating: 0, count: 65_536))
        XCTAssertLessThan(bomb.count, 400)
        for payload in [bomb, [0xff, 0xff, 0xff, 0xff, 0x00, 0x01, 0x02], [0x00]] {
            var buffer = [UInt8](repeating: 0, count: payload.count + WireFormat.transportOverhead)
            buffer.replaceSubrange(WireFormat.transportHeaderSize..<WireFormat.transportHeaderSize + payload.count, with: payload)
            let length = buffer.withUnsafeMutableBytes {
                session.seal($0.baseAddress!, payloadLength: payload.count, worker: 0, flags: TransportFlags.compressed)
            }
            deliver(Array(buffer[0..<(try XCTUnwrap(length))]), from: a, to: b)
        }
        XCTAssertEqual(b.delivered, [])
        XCTAssertEqual(count(b, .dropCompression), 3)
        XCTAssertEqual(count(b, .dropAuth), 0, "authentic: it is the decompression that refuses them")
    }

    func testPacketCompressedForAUsedUpSessionIsStagedAsItWasRead() throws {
        let (a, b) = pair(aCompresses: true, bCompresses: true)
        // A wiped session refuses to seal, as one past its message limit does.
        try XCTUnwrap(a.table.routes[b.address]?.session).wipe()
        network.clock.advance(by: seconds(1))   // a new initiation needs a newer timestamp
        let packet = a.send(to: b.address, payload: Self.text)
        network.settle()
        XCTAssertEqual(b.delivered, [packet], "staged uncompressed, sent after a new handshake")
        XCTAssertEqual(a.control.counters.value(.stagedSent), 2)
    }

    func testCompressorRoundTripAndBounds() throws {
        let compressor = PacketCompressor(maximumPacket: 1420)
        var packet = Self.text
        let compressed = try XCTUnwrap(packet.withUnsafeMutableBytes {
            compressor.compressInPlace($0.baseAddress!, length: $0.count)
        })
        XCTAssertLessThan(compressed, Self.text.count)
        let restored = packet.withUnsafeBytes {
            compressor.decompress(UnsafeRawBufferPointer(rebasing: $0[0..<compressed])).map(Array.init)
        }
        XCTAssertEqual(restored, Self.text)
        // Larger than the limit: neither compressed nor decompressed.
        var large = [UInt8](repeating: 0, count: 1421)
        XCTAssertNil(large.withUnsafeMutableBytes { compressor.compressInPlace($0.baseAddress!, length: $0.count) })
        let block = lz4Block(of: large)
        XCTAssertNil(block.withUnsafeBytes { compressor.decompress($0) })
    }

    /// An LZ4 block made with a compressor large enough for `data`.
    private func lz4Block(of data: [UInt8]) -> [UInt8] {
        let compressor = PacketCompressor(maximumPacket: data.count)
        var bytes = data
        let length = bytes.withUnsafeMutableBytes { compressor.compressInPlace($0.baseAddress!, length: $0.count) }
        return Array(bytes[0..<(length ?? 0)])
    }
}
