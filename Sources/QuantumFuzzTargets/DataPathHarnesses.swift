import Logging
import QuantumCore
@testable import QuantumCrypto
import QuantumDevice
@testable import QuantumNode

/// One node's data path as a worker runs it, with one peer whose session keys are
/// `FuzzKeys.forward`/`backward`: this node is 10.99.0.1 in 10.99.0.0/16, holds the
/// floating IP 10.99.200.2 and serves as gateway; the peer is 10.99.0.2 (floating IP
/// 10.99.200.1, the compression plugin on) at 127.0.0.2:1000.
enum FuzzNode {
    static let localIP = IPv4Address("10.99.0.1")!
    static let peerIP = IPv4Address("10.99.0.2")!
    static let network = try! IPv4Prefix(parsing: "10.99.0.0/16")
    static let endpoint = UDPEndpoint(IPv4Address("127.0.0.2")!, port: 1000, family: .ipv4)
    static let quiet = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A control plane that sends nothing anywhere and whose clock stands still.
    static func controlPlane(tables: ForwardingTableHolder = ForwardingTableHolder()) -> ControlPlane {
        let configuration = ControlPlane.Configuration(localIP: localIP, keyPair: FuzzKeys.responder, workerCount: 1,
                                                       useIPv4: true, useIPv6: false, removalGrace: 0, compression: true,
                                                       network: network)
        return ControlPlane(configuration: configuration, transport: NullTransport(), clock: StillClock(),
                            tables: tables, logger: quiet)
    }

    /// The forwarding table of this node with `session` as the peer's only session.
    static func table(session: Session, signals: PeerSignals) -> ForwardingTable {
        let route = ForwardingTable.Route(privateIP: peerIP, endpoint: endpoint, session: session, signals: signals,
                                          compression: true)
        let inbound = ForwardingTable.Inbound(
            session: session, privateIP: peerIP, endpoint: endpoint, signals: signals, confirmed: true, compression: true,
            sources: .init(floating: [IPv4Address("10.99.200.1")!], outsideNetwork: false))
        return ForwardingTable(routes: [peerIP: route], inbound: [session.localIndex: inbound], network: network,
                               localFloating: [IPv4Address("10.99.200.2")!], servesGateway: true)
    }

    /// A minimal IPv4 header (20 bytes) in front of `payload`.
    static func ipv4Packet(from source: IPv4Address, to destination: IPv4Address, payload: [UInt8] = [1, 2, 3, 4]) -> [UInt8] {
        let total = 20 + payload.count
        var bytes: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 0, 0, 0, 64, 17, 0, 0]
        for address in [source, destination] {
            bytes += (0..<4).map { UInt8(truncatingIfNeeded: address.value >> (24 - 8 * $0)) }
        }
        return bytes + payload
    }

    private struct NullTransport: ControlTransport {
        var family: UDPSocket.Family { .ipv4 }
        func send(_ bytes: UnsafeRawBufferPointer, to endpoint: UDPEndpoint, worker: Int) {}
    }

    private struct StillClock: ControlClock {
        func now() -> UInt64 { 1 }
        func timestamp() -> TAI64N { FuzzKeys.timestamp }
    }
}

/// A worker's receive and send path (`PacketPath`) on `FuzzNode`. The first input byte
/// picks what the rest is (modulo 3):
///
///     0  a datagram from the peer's endpoint, received as it is
///     1  counter (u64), flags (u8), inner packet: sealed with the peer's key at that
///        counter with those flags (flag 1: the "inner packet" is taken for an LZ4 block),
///        then received — so the inner packet checks see arbitrary authenticated bytes
///     2  an inner packet read from the TUN device, sealed for its destination
struct DataPathHarness: FuzzHarness {
    private let path = try! PacketPath(worker: 0, localIP: FuzzNode.localIP, control: FuzzNode.controlPlane(), maximumPacket: 1420)
    private let signals = PeerSignals(slots: 2)

    func seeds() -> [[UInt8]] {
        let inner = FuzzNode.ipv4Packet(from: FuzzNode.peerIP, to: FuzzNode.localIP, payload: Array(repeating: 7, count: 64))
        let compressor = PacketCompressor(maximumPacket: 1420)
        var block = inner
        let blockLength = block.withUnsafeMutableBytes { compressor.compressInPlace($0.baseAddress!, length: $0.count) }!
        let sealed = TransportHarness.seal(counter: 0, payload: inner)!
        return [
            [0] + sealed,
            [0] + FuzzKeys.initiation().message,
            [1] + [UInt8](repeating: 0, count: 7) + [1, 0] + inner,
            [1] + [UInt8](repeating: 0, count: 7) + [2, TransportFlags.compressed] + block[0..<blockLength],
            [1] + [UInt8](repeating: 0, count: 7) + [3, 0]
                + FuzzNode.ipv4Packet(from: IPv4Address("192.0.2.1")!, to: IPv4Address("10.99.200.2")!),
            [2] + FuzzNode.ipv4Packet(from: FuzzNode.localIP, to: FuzzNode.peerIP),
            [2] + FuzzNode.ipv4Packet(from: FuzzNode.localIP, to: IPv4Address("198.51.100.1")!),
        ]
    }

    func run(_ input: UnsafeRawBufferPointer) {
        let session = TransportHarness.receivingSession()
        let table = FuzzNode.table(session: session, signals: signals)
        var reader = FuzzInput(input)
        switch reader.byte() % 3 {
        case 0:
            var message = Array(reader.rest())
            _ = message.withUnsafeMutableBytes { path.open($0, from: FuzzNode.endpoint, table: table, now: 1) }
        case 1:
            let counter = reader.uint64()
            let flags = reader.byte()
            guard var message = TransportHarness.seal(counter: counter, payload: Array(reader.rest()), flags: flags) else { return }
            _ = message.withUnsafeMutableBytes { path.open($0, from: FuzzNode.endpoint, table: table, now: 1) }
        default:
            let inner = reader.rest()
            var buffer = [UInt8](repeating: 0, count: inner.count + WireFormat.transportOverhead)
            buffer.withUnsafeMutableBytes { bytes in
                UnsafeMutableRawBufferPointer(rebasing: bytes[WireFormat.transportHeaderSize...]).copyMemory(from: inner)
                _ = path.seal(bytes.baseAddress!, length: inner.count, table: table, now: 1)
            }
        }
    }
}

/// Inner packet headers as the data path reads them, and the forwarding table's
/// decisions on their addresses (route out; accept in from the peer; accept as a destination).
struct InnerIPHarness: FuzzHarness {
    private let table = FuzzNode.table(session: TransportHarness.receivingSession(), signals: PeerSignals(slots: 2))

    func seeds() -> [[UInt8]] {
        [FuzzNode.ipv4Packet(from: FuzzNode.peerIP, to: FuzzNode.localIP),
         FuzzNode.ipv4Packet(from: IPv4Address("10.99.200.1")!, to: IPv4Address("203.0.113.9")!),
         [0x60, 0, 0, 0, 0, 4, 17, 64] + [UInt8](repeating: 0xFD, count: 32) + [1, 2, 3, 4]]
    }

    func run(_ input: UnsafeRawBufferPointer) {
        _ = IPPacket.version(input)
        guard let source = IPPacket.ipv4Source(input), let destination = IPPacket.ipv4Destination(input) else { return }
        _ = table.route(to: destination)
        _ = table.accepts(destination: destination, localIP: FuzzNode.localIP)
        if let inbound = table.inbound[TransportHarness.localIndex] {
            _ = table.accepts(source: source, from: inbound)
        }
    }
}
