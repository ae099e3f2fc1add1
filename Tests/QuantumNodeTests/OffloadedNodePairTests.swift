import CAllocationCounter
import Glibc
import Logging
import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumDevice
import XCTest

@testable import QuantumNode

/// Two engines whose TUN queues carry a virtio-net header (socketpairs standing in for the
/// kernel), over real UDP on loopback with the sockets' offloads: a TCP super-packet written
/// into one side leaves the other as coalesced super-packet(s) holding every byte.
final class OffloadedNodePairTests: XCTestCase {
    private struct Side {
        let node: Node
        let kernel: PacketQueue
        let mapping: Mapping
    }

    private var nodes: [Node] = []
    private var descriptors: [Int32] = []

    override func tearDown() {
        nodes.forEach { $0.stop() }
        descriptors.forEach { _ = close($0) }
        super.tearDown()
    }

    private func makeSide(_ address: String, ports: inout Set<UInt16>) throws -> Side {
        let (engineEnd, kernelEnd) = try PacketQueue.pair()
        descriptors += [engineEnd.fileDescriptor, kernelEnd.fileDescriptor]
        var socket: UDPSocket
        repeat {
            socket = try UDPSocket(family: .ipv4, bindAddress: "127.0.0.1", port: 0)
            descriptors.append(socket.fileDescriptor)
        } while !ports.insert(socket.localPort).inserted
        let queue = PacketQueue(fileDescriptor: engineEnd.fileDescriptor, virtioHeader: true, coalescing: true)
        let kernel = PacketQueue(fileDescriptor: kernelEnd.fileDescriptor, virtioHeader: true)
        var logger = Logger(label: "offload-\(address)")
        logger.logLevel = .warning
        let privateIP = IPv4Address(address)!, keyPair = StaticKeyPair.generate()
        let node = try Node(settings: Node.Settings(privateIP: privateIP, mtu: 1420, useIPv4: true, useIPv6: false),
                            keyPair: keyPair, queues: [queue], sockets: [socket], logger: logger)
        nodes.append(node)
        let mapping = Mapping(machineID: String(repeating: "cd", count: 16), privateIP: privateIP,
                              ipv4: IPv4Address("127.0.0.1"), ipv6: nil, port: socket.localPort,
                              publicKey: keyPair.publicKey)
        return Side(node: node, kernel: kernel, mapping: mapping)
    }

    /// Writes `packet` behind `header` into the side's TUN queue, as the kernel would.
    private func write(_ packet: [UInt8], header: VirtioNetHeader = VirtioNetHeader(), into side: Side) {
        var bytes = [UInt8](repeating: 0, count: VirtioNetHeader.size)
        bytes.withUnsafeMutableBytes { header.write(to: $0.baseAddress!) }
        bytes.withUnsafeBytes { h in packet.withUnsafeBytes { _ = side.kernel.write(header: h.baseAddress!, packet: $0) } }
    }

    /// The next write out of the side's TUN queue within `seconds`: its header and packet.
    private func read(from side: Side, seconds: Double) -> (VirtioNetHeader, [UInt8])? {
        var buffer = [UInt8](repeating: 0, count: 70_000)
        var fds = pollfd(fd: side.kernel.fileDescriptor, events: Int16(POLLIN), revents: 0)
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            _ = poll(&fds, 1, 50)
            let count = buffer.withUnsafeMutableBytes { side.kernel.read(into: $0.baseAddress!, capacity: $0.count) }
            if count > VirtioNetHeader.size {
                return (buffer.withUnsafeBytes { VirtioNetHeader(from: $0.baseAddress!) },
                        Array(buffer[VirtioNetHeader.size..<count]))
            }
        }
        return nil
    }

    /// A TCP/IPv4 packet 10.99.4.1:40000 → 10.99.4.2:5201 with `payload` (checksum left 0:
    /// the sender's kernel offloads it).
    private func tcpPacket(sequence: UInt32, payload: [UInt8]) -> [UInt8] {
        let total = 40 + payload.count
        var bytes: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0x40, 0, 64, 6, 0, 0,
                              10, 99, 4, 1, 10, 99, 4, 2]
        let ipSum = ~bytes.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: 20) }
        bytes[10] = UInt8(ipSum >> 8)
        bytes[11] = UInt8(ipSum & 0xFF)
        bytes += [0x9C, 0x40, 0x14, 0x51, UInt8(sequence >> 24), UInt8(sequence >> 16 & 0xFF),
                  UInt8(sequence >> 8 & 0xFF), UInt8(sequence & 0xFF), 0, 0, 0, 1, 0x50, TCPFlags.ack, 0x10, 0, 0, 0, 0, 0]
        return bytes + payload
    }

    /// Two started sides that know each other, with a session: an ordinary packet crossed.
    private func connectedPair() throws -> (Side, Side) {
        var ports: Set<UInt16> = []
        let a = try makeSide("10.99.4.1", ports: &ports), b = try makeSide("10.99.4.2", ports: &ports)
        for side in [a, b] {
            side.node.apply([a, b].map { MappingUpdate(address: $0.mapping.privateIP, mapping: $0.mapping, createRevision: 1) })
            side.node.start()
        }
        // An ordinary packet until the handshake is done and one arrives.
        let hello = ipv4Packet(from: IPv4Address("10.99.4.1")!, to: IPv4Address("10.99.4.2")!, payload: Array("hello".utf8))
        var arrived = false
        for _ in 0..<30 where !arrived {
            write(hello, into: a)
            if let (header, packet) = read(from: b, seconds: 0.3) {
                XCTAssertEqual(header, VirtioNetHeader(), "an ordinary packet comes with an empty header")
                XCTAssertEqual(packet, hello)
                arrived = true
            }
        }
        XCTAssertTrue(arrived, "no packet crossed")
        return (a, b)
    }

    /// 64 KB of TCP payload (a partial checksum, 1,368-byte segments), as the kernel hands a TSO packet over.
    private static let superPayload = (0..<(65_535 - 40)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
    private static let superHeader = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.GSO.tcpv4,
                                                     headerLength: 40, segmentSize: 1368, checksumStart: 20, checksumOffset: 16)
    private static let segmentCount = (superPayload.count + 1367) / 1368

    /// Writes one super-packet starting at `sequence` into `a` and reads what comes out of `b`
    /// until all its payload did, checking order and headers on the way.
    /// - Returns: the payload received, the writes it took and the segments they carried.
    private func crossSuperPacket(from a: Side, to b: Side, sequence: UInt32) -> (payload: [UInt8], writes: Int, segments: Int) {
        var superPacket = tcpPacket(sequence: sequence, payload: Self.superPayload)
        let pseudo = InternetChecksum.pseudoHeaderSum(source: 0x0A63_0401, destination: 0x0A63_0402, protocol: 6,
                                                      length: superPacket.count - 20)
        superPacket[36] = UInt8(pseudo >> 8)
        superPacket[37] = UInt8(pseudo & 0xFF)
        write(superPacket, header: Self.superHeader, into: a)
        var received: [UInt8] = [], writes = 0, segments = 0
        while received.count < Self.superPayload.count, let (header, packet) = read(from: b, seconds: 3) {
            writes += 1
            XCTAssertEqual(Array(packet[12..<20]), [10, 99, 4, 1, 10, 99, 4, 2])
            let arrived = UInt32(packet[24]) << 24 | UInt32(packet[25]) << 16 | UInt32(packet[26]) << 8 | UInt32(packet[27])
            XCTAssertEqual(arrived, sequence &+ UInt32(received.count), "in order, nothing missing")
            if header.gsoType == VirtioNetHeader.GSO.tcpv4 {
                XCTAssertEqual(header, Self.superHeader)
                segments += (packet.count - 40 + 1367) / 1368
            } else {
                XCTAssertEqual(header, VirtioNetHeader())
                segments += 1
            }
            received += packet[40...]
        }
        return (received, writes, segments)
    }

    func testSuperPacketCrossesSegmentedAndArrivesCoalesced() throws {
        let (a, b) = try connectedPair()
        let (received, writes, segments) = crossSuperPacket(from: a, to: b, sequence: 0xFFFF_F000)
        XCTAssertEqual(received, Self.superPayload, "every byte arrives, in order")
        XCTAssertEqual(segments, Self.segmentCount)
        XCTAssertLessThan(writes, Self.segmentCount, "segments were joined on the way out")
        // The worker counts a write after it returned, so the counters may trail the data a little.
        _ = eventually { b.node.counters()["rx_packets"] == UInt64(Self.segmentCount + 1) }
        XCTAssertEqual(a.node.counters()["tun_superpackets_split"], 1)
        XCTAssertGreaterThanOrEqual(b.node.counters()["tun_coalesced_writes"] ?? 0, 1)
        XCTAssertEqual(b.node.counters()["rx_packets"], UInt64(Self.segmentCount + 1))
    }

    /// The offloaded path allocates nothing per packet either: super-packets split, sealed and
    /// sent as GSO trains by one worker, received as GRO runs, opened and coalesced by the other,
    /// with every heap allocation on the worker threads counted (CAllocationCounter).
    func testOffloadedWorkersAllocateNothingPerSuperPacket() throws {
        let (a, b) = try connectedPair()
        var sequence: UInt32 = 1
        for _ in 0..<5 {
            XCTAssertEqual(crossSuperPacket(from: a, to: b, sequence: sequence).payload, Self.superPayload, "warm-up")
            sequence &+= UInt32(Self.superPayload.count)
        }
        let measured = 50
        allocation_counter_start(Node.workerThreadPrefix)
        var intact = 0
        for _ in 0..<measured {
            if crossSuperPacket(from: a, to: b, sequence: sequence).payload == Self.superPayload { intact += 1 }
            sequence &+= UInt32(Self.superPayload.count)
        }
        let allocations = allocation_counter_stop()
        XCTAssertEqual(intact, measured, "every super-packet arrived whole")
        let segments = measured * Self.segmentCount
        print("allocations per packet (offloaded): \(Double(allocations) / Double(segments)) (\(allocations) over "
              + "\(measured) super-packets, \(segments) segments)")
        XCTAssertEqual(allocations, 0, "heap allocations on worker threads over \(segments) segments")
        _ = eventually { a.node.counters()["tun_superpackets_split"] == UInt64(measured + 5) }
        XCTAssertEqual(a.node.counters()["tun_superpackets_split"], UInt64(measured + 5), "every one went through the split")
    }

    func testGarbageFromTheDeviceIsDroppedAndCounted() throws {
        var ports: Set<UInt16> = []
        let a = try makeSide("10.99.4.1", ports: &ports)
        a.node.start()
        // A TCP super-packet whose segment size is 0, and a packet shorter than the header.
        write(tcpPacket(sequence: 1, payload: [UInt8](repeating: 1, count: 3000)),
              header: VirtioNetHeader(gsoType: VirtioNetHeader.GSO.tcpv4), into: a)
        _ = [UInt8](repeating: 0, count: 4).withUnsafeBytes { a.kernel.write($0.baseAddress!, length: 4) }
        _ = eventually { a.node.counters()["drop_offload_malformed"] == 2 }
        XCTAssertEqual(a.node.counters()["drop_offload_malformed"], 2)
    }
}
