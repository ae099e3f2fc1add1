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

    // TSO split per 64 KB and GRO coalesce per 64 KB: added by the lead when the offload code
    // (TCP segmentation and coalescing) is merged — time its entry points here, one 64 KB
    // super-packet per iteration, with the same metrics.
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
