import Benchmark
import QuantumCore
import QuantumCrypto
import QuantumNode

// Micro-benchmarks of the per-packet work and of the handshake. Each reports the wall-clock
// time and throughput per operation and the heap allocations per operation (mallocCountTotal,
// counted by the framework's malloc interposer): the per-packet ones should show 0. (CPU time
// is left out: it is counted in 10 ms ticks, far coarser than one operation.)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 10_000
    )

    // Seal then open one transport message in place, as a sending and a receiving worker do.
    // 64 KB: one TSO super-packet sealed whole (timed per operation: each takes tens of µs).
    for size in [64, 512, 1420, 65_535] {
        let scaling: BenchmarkScalingFactor = size > 10_000 ? .one : .kilo
        Benchmark("seal+open \(size) B", configuration: .init(scalingFactor: scaling)) { benchmark, link in
            for _ in benchmark.scaledIterations {
                blackHole(link.sealAndOpen())
            }
        } setup: {
            try SessionPair(payloadSize: size)
        }
    }

    // The forwarding table's lookup of a destination's route, with 10 and with 10,000 peers.
    for peers in [10, 10_000] {
        Benchmark("route lookup, \(peers) peers") { benchmark, lookups in
            for _ in benchmark.scaledIterations {
                blackHole(lookups.next())
            }
        } setup: {
            RouteLookups(peers: peers)
        }
    }

    // A whole handshake: initiation, response and completion on both sides (two sessions).
    Benchmark("handshake (both sides)", configuration: .init(scalingFactor: .one)) { benchmark, pair in
        for _ in benchmark.scaledIterations {
            blackHole(try pair.handshake())
        }
    } setup: {
        HandshakePair()
    }

    // TSO split per 64 KB: one TCP super-packet as the TUN device hands it over, cut into
    // tunnel-sized segments (headers, IP ID, sequence numbers and both checksums written).
    Benchmark("TSO split 64 KB", configuration: .init(scalingFactor: .one)) { benchmark, superPacket in
        for _ in benchmark.scaledIterations {
            blackHole(superPacket.split())
        }
    } setup: {
        SuperPacket()
    }

    // GRO coalesce per 64 KB: the same super-packet's segments, received one by one, each
    // checksum-verified and joined into one write for the TUN device.
    Benchmark("GRO coalesce 64 KB", configuration: .init(scalingFactor: .one)) { benchmark, superPacket in
        for _ in benchmark.scaledIterations {
            blackHole(superPacket.coalesce())
        }
    } setup: {
        SuperPacket()
    }
}

/// A 64 KB TCP/IPv4 super-packet (what a TUN device with TSO hands over), its segments at the
/// tunnel's 1,420-byte MTU, and a coalescer to join them again.
final class SuperPacket {
    static let mtu = 1420
    static let stride = 2048
    private let packet: UnsafeMutableRawBufferPointer
    private let segments: UnsafeMutableRawPointer
    private let header: VirtioNetHeader
    private let coalescer = TCPCoalescer()
    private let count: Int

    init() {
        let length = 65_535, headers = 40
        packet = .allocate(byteCount: length, alignment: 64)
        for index in 0..<length { packet[index] = UInt8(truncatingIfNeeded: index &* 31) }
        let ip: [UInt8] = [0x45, 0, UInt8(length >> 8), UInt8(length & 0xFF), 0x12, 0x34, 0x40, 0, 64, 6, 0, 0,
                           10, 99, 0, 1, 10, 99, 0, 2]
        let tcp: [UInt8] = [0x9c, 0x40, 0x14, 0x51, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0x50, TCPFlags.ack | TCPFlags.psh,
                            0xFF, 0xFF, 0, 0, 0, 0]
        for (offset, byte) in (ip + tcp).enumerated() { packet[offset] = byte }
        let base = packet.baseAddress!
        base.storeBytes(of: (~InternetChecksum.sum(base, count: 20)).bigEndian, toByteOffset: 10, as: UInt16.self)
        let pseudo = InternetChecksum.pseudoHeaderSum(
            source: UInt32(bigEndian: base.loadUnaligned(fromByteOffset: 12, as: UInt32.self)),
            destination: UInt32(bigEndian: base.loadUnaligned(fromByteOffset: 16, as: UInt32.self)),
            protocol: 6, length: length - 20)
        base.storeBytes(of: pseudo.bigEndian, toByteOffset: 36, as: UInt16.self)
        header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.GSO.tcpv4,
                                 headerLength: UInt16(headers), segmentSize: UInt16(Self.mtu - headers),
                                 checksumStart: 20, checksumOffset: 16)
        segments = .allocate(byteCount: 64 * Self.stride, alignment: 64)
        guard case .success(let count) = TCPSegmentation.split(header, packet: packet, maximumPacket: Self.mtu,
                                                              into: segments, stride: Self.stride) else {
            fatalError("the benchmark's super-packet was refused")
        }
        self.count = count
    }

    deinit {
        packet.deallocate()
        segments.deallocate()
    }

    /// Cuts the super-packet into segments; returns how many.
    func split() -> Int {
        guard case .success(let count) = TCPSegmentation.split(header, packet: packet, maximumPacket: Self.mtu,
                                                              into: segments, stride: Self.stride) else { return 0 }
        return count
    }

    /// Feeds every segment to the coalescer and flushes it; returns the segments joined in writes.
    func coalesce() -> Int {
        var joined = 0
        for index in 0..<count {
            let segment = segments + index * Self.stride
            let length = Int(UInt16(bigEndian: segment.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            coalescer.add(UnsafeRawBufferPointer(start: segment, count: length)) { _, _, segments in joined += segments }
        }
        coalescer.flush { _, _, segments in joined += segments }
        return joined
    }
}

/// Two identities that complete handshakes with each other.
final class HandshakePair {
    private let initiator = Handshaker(localKeys: .generate())
    private let responder = Handshaker(localKeys: .generate())
    private let observed = [UInt8](repeating: 0, count: WireFormat.observedEndpointSize)
    private var index: UInt32 = 0

    /// Runs one handshake; returns the initiator's and the responder's sessions.
    func handshake() throws -> (Session, Session) {
        index &+= 2
        let (initiation, state) = try initiator.makeInitiation(
            peerPublicKey: responder.localKeys.publicKey, senderIndex: index, timestamp: .now())
        let received = try initiation.withUnsafeBytes { bytes throws(HandshakeError) in
            try responder.consumeInitiation(bytes)
        }
        let (response, responderKeys) = try responder.makeResponse(
            to: received, senderIndex: index &+ 1, observedEndpoint: observed)
        let (initiatorKeys, _) = try response.withUnsafeBytes { bytes throws(HandshakeError) in
            try initiator.consumeResponse(bytes, state: state)
        }
        let now = monotonicNanoseconds()
        return (try Session(keys: initiatorKeys, workers: 1, now: now),
                try Session(keys: responderKeys, workers: 1, now: now))
    }
}

/// Both ends of one session and a message buffer of one payload size.
final class SessionPair {
    private let sender: Session
    private let receiver: Session
    private let buffer: UnsafeMutableRawBufferPointer
    private let payloadSize: Int

    init(payloadSize: Int) throws {
        (sender, receiver) = try HandshakePair().handshake()
        self.payloadSize = payloadSize
        buffer = .allocate(byteCount: payloadSize + WireFormat.transportOverhead, alignment: 64)
        buffer.initializeMemory(as: UInt8.self, repeating: 0x5a)
    }

    deinit { buffer.deallocate() }

    /// Seals the payload in place and opens it again (the plaintext is back where it was).
    func sealAndOpen() -> OpenResult {
        guard let length = sender.seal(buffer.baseAddress!, payloadLength: payloadSize, worker: 0, flags: 0) else {
            fatalError("the session ran out of counters")
        }
        return receiver.open(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length]), worker: 0)
    }
}

/// A forwarding table of `peers` routes and the destinations looked up in turn.
final class RouteLookups {
    private let table: ForwardingTable
    private let destinations: [IPv4Address]
    private var position = 0

    init(peers: Int) {
        let base = IPv4Address("10.99.0.0")!.value
        destinations = (1...peers).map { IPv4Address(base + UInt32($0)) }
        table = ForwardingTable(sendingTo: destinations.map {
            ForwardingTable.Route(peer: $0, endpoint: nil, session: nil, workers: 1)
        })
    }

    /// Looks up the next destination's route.
    func next() -> ForwardingTable.Route? {
        defer { position = position == destinations.count - 1 ? 0 : position + 1 }
        return table.route(to: destinations[position])
    }
}
