import Logging
import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumDevice
import Synchronization

@testable import QuantumNode

/// A clock the test moves by hand.
final class FakeClock: ControlClock {
    private let nanoseconds: Atomic<UInt64>

    /// Starts well after zero: zero means "never" in the peer signals.
    init(start: UInt64 = 1_000 * 1_000_000_000) {
        nanoseconds = Atomic(start)
    }

    func now() -> UInt64 { nanoseconds.load(ordering: .relaxed) }

    func timestamp() -> TAI64N {
        let now = now()
        return TAI64N(unixSeconds: 1_700_000_000 + now / 1_000_000_000, nanoseconds: UInt32(now % 1_000_000_000))
    }

    func advance(by nanoseconds: UInt64) {
        self.nanoseconds.add(nanoseconds, ordering: .relaxed)
    }
}

/// Nanoseconds in `seconds` seconds.
func seconds(_ seconds: Double) -> UInt64 { UInt64(seconds * 1_000_000_000) }

/// An in-memory underlay: datagrams sent by any simulated node wait in flight until
/// `settle()` hands them to the node at their destination endpoint.
final class SimulatedNetwork: @unchecked Sendable {
    // @unchecked: tests drive it from one thread; the mutex only guards sends made
    // through the transports.

    struct Datagram {
        let bytes: [UInt8]
        let source: UDPEndpoint
        let destination: UDPEndpoint
    }

    let clock = FakeClock()
    private let inFlight = Mutex<[Datagram]>([])
    /// Every datagram sent, with the time it was sent, in order.
    private let sentLog = Mutex<[(at: UInt64, datagram: Datagram)]>([])
    /// Handshake responses sent before the responder's table held their session (a peer
    /// answering at once would find no session).
    let responsesAheadOfTheirTable = Atomic<Int>(0)
    private(set) var nodes: [SimulatedNode] = []
    /// Endpoints whose datagrams are lost, in either direction.
    var unreachable: [UDPEndpoint] = []
    /// Pairs of endpoints between which datagrams are lost, in either direction (a firewall).
    var blocked: [(UDPEndpoint, UDPEndpoint)] = []
    private var nextPort: UInt16 = 40_000
    private var nextRevision: Int64 = 1
    /// The underlay address of every node.
    static let underlayIP = IPv4Address("127.0.0.1")!

    /// A node at a fresh loopback port (or at `port`, e.g. a node restarted in place).
    /// With `compression`, the node offers the compression plugin; `advertised` overrides the
    /// plugins its mapping lists (a peer that claims what it does not do). `configure` may set
    /// more of its control plane's configuration (e.g. gateway roles).
    func addNode(_ address: String, keyPair: StaticKeyPair = .generate(), removalGrace: UInt64 = seconds(120),
                 port: UInt16? = nil, compression: Bool = false, advertised: [String]? = nil, relay: Bool = false,
                 configure: (inout ControlPlane.Configuration) -> Void = { _ in }) -> SimulatedNode {
        nextPort += 1
        let node = SimulatedNode(network: self, address: IPv4Address(address)!, keyPair: keyPair,
                                 port: port ?? nextPort, createRevision: newRevision(), removalGrace: removalGrace,
                                 compression: compression,
                                 plugins: advertised ?? (compression ? [Plugin.compression.rawValue] : []),
                                 relay: relay, configure: configure)
        nodes.append(node)
        return node
    }

    /// Takes `node` off the network (it stops receiving; its datagrams in flight still arrive).
    func remove(_ node: SimulatedNode) {
        nodes.removeAll { $0 === node }
    }

    /// A store revision later than every one handed out so far.
    func newRevision() -> Int64 {
        defer { nextRevision += 1 }
        return nextRevision
    }

    func send(_ datagram: Datagram) {
        inFlight.withLock { $0.append(datagram) }
        sentLog.withLock { $0.append((clock.now(), datagram)) }
    }

    /// The datagrams sent from `endpoint` since `start`, with their send times, in order.
    func sent(from endpoint: UDPEndpoint, since start: UInt64) -> [(at: UInt64, datagram: Datagram)] {
        sentLog.withLock { log in log.filter { $0.datagram.source == endpoint && $0.at >= start } }
    }

    /// Tells every node about every other (each node's own datastore view).
    func connectAll() {
        let updates = nodes.map(\.update)
        for node in nodes { node.control.enqueue(updates) }
        advance(by: ControlPlane.mappingPublishInterval)
    }

    /// Hands `updates` to `node` and lets time pass until they are surely published
    /// (mapping changes are published at most every `mappingPublishInterval`).
    func apply(_ updates: [MappingUpdate], to node: SimulatedNode) {
        node.control.enqueue(updates)
        advance(by: ControlPlane.mappingPublishInterval)
    }

    /// Delivers datagrams and runs every control plane until nothing is left in flight.
    func settle() {
        for _ in 0..<100 {
            for node in nodes { node.control.step() }
            let batch = inFlight.withLock { queue in
                defer { queue.removeAll() }
                return queue
            }
            if batch.isEmpty { return }
            for datagram in batch where !unreachable.contains(datagram.source) && !unreachable.contains(datagram.destination)
                && !isBlocked(datagram) {
                nodes.first { $0.endpoint == datagram.destination }?.receive(datagram)
            }
        }
        preconditionFailure("the simulated network did not settle")
    }

    /// Whether a firewall rule in `blocked` drops `datagram`.
    func isBlocked(_ datagram: Datagram) -> Bool {
        blocked.contains { ($0.0 == datagram.source && $0.1 == datagram.destination) || ($0.1 == datagram.source && $0.0 == datagram.destination) }
    }

    /// Moves the clock forward in timer ticks, settling after each; `each` runs once per tick first.
    func advance(by duration: UInt64, each: () -> Void = {}) {
        var left = duration
        while left > 0 {
            let step = min(left, ControlPlane.tickInterval)
            clock.advance(by: step)
            left -= step
            each()
            settle()
        }
    }
}

/// One node on the simulated network: a real control plane and a real `PacketPath`,
/// with the TUN device replaced by `delivered` and the socket by the network.
final class SimulatedNode: @unchecked Sendable {
    let address: IPv4Address
    let keyPair: StaticKeyPair
    /// The port the node registered in its mapping.
    let registeredPort: UInt16
    let createRevision: Int64
    /// The plugins its mapping lists.
    let plugins: [String]
    /// Whether it offers itself as relay (`--relay`, in its mapping too).
    let relay: Bool
    let control: ControlPlane
    let path: PacketPath
    let tables = ForwardingTableHolder()
    /// Inner packets written to the (simulated) TUN device.
    var delivered: [[UInt8]] = []
    private unowned let network: SimulatedNetwork
    private let source: Source

    /// Where the node's datagrams come from (changes when a NAT rebinds it).
    final class Source: @unchecked Sendable {
        var endpoint: UDPEndpoint
        init(_ endpoint: UDPEndpoint) { self.endpoint = endpoint }
    }

    init(network: SimulatedNetwork, address: IPv4Address, keyPair: StaticKeyPair, port: UInt16,
         createRevision: Int64, removalGrace: UInt64, compression: Bool = false, plugins: [String] = [],
         relay: Bool = false, configure: (inout ControlPlane.Configuration) -> Void = { _ in }) {
        self.network = network
        self.relay = relay
        self.plugins = plugins
        self.address = address
        self.keyPair = keyPair
        registeredPort = port
        source = Source(UDPEndpoint(SimulatedNetwork.underlayIP, port: port, family: .ipv4))
        self.createRevision = createRevision
        var logger = Logger(label: "sim-\(address)")
        logger.logLevel = .critical
        var configuration = ControlPlane.Configuration(localIP: address, keyPair: keyPair, workerCount: 1, useIPv4: true,
                                                       useIPv6: false, removalGrace: removalGrace,
                                                       compression: compression)
        configuration.relay = relay
        configure(&configuration)
        control = ControlPlane(configuration: configuration,
                               transport: Transport(network: network, source: source, tables: tables),
                               clock: network.clock, tables: tables, logger: logger)
        // Only fails if OpenSSL cannot set up a cipher context, which no test survives anyway.
        path = try! PacketPath(worker: 0, localIP: address, control: control, maximumPacket: 1420)
    }

    /// Where the node is now; set it to move the node (its mapping stays as registered).
    var endpoint: UDPEndpoint {
        get { source.endpoint }
        set { source.endpoint = newValue }
    }

    /// This node's mapping, as it would publish it.
    var mapping: Mapping {
        Mapping(machineID: String(repeating: "cd", count: 16), privateIP: address, ipv4: SimulatedNetwork.underlayIP,
                ipv6: nil, port: registeredPort, publicKey: keyPair.publicKey, plugins: plugins, relay: relay)
    }

    /// The datastore change announcing `mapping`.
    var update: MappingUpdate { MappingUpdate(address: address, mapping: mapping, createRevision: createRevision) }

    /// The control plane's peer for `address`.
    func peer(_ address: IPv4Address) -> Peer? { control.peers[address] }

    var table: ForwardingTable { tables.load().0 }

    /// Sends one IP packet to `destination` as a worker would (sealed now, or staged).
    @discardableResult
    func send(to destination: IPv4Address, payload: [UInt8] = [1, 2, 3], from source: IPv4Address? = nil) -> [UInt8] {
        let packet = ipv4Packet(from: source ?? address, to: destination, payload: payload)
        // Room for a relay envelope before the transport message, as in a worker's buffers.
        let start = WireFormat.relayHeaderSize + WireFormat.transportHeaderSize
        var buffer = [UInt8](repeating: 0, count: WireFormat.relayHeaderSize + packet.count + WireFormat.transportOverhead)
        buffer.replaceSubrange(start..<start + packet.count, with: packet)
        let sealed: ([UInt8], UDPEndpoint)? = buffer.withUnsafeMutableBytes { bytes in
            guard let (start, length, destination) = path.seal(bytes.baseAddress! + WireFormat.relayHeaderSize,
                                                               length: packet.count, table: table, now: network.clock.now())
            else { return nil }
            return (Array(UnsafeRawBufferPointer(start: start, count: length)), destination)
        }
        if let (datagram, destination) = sealed {
            network.send(.init(bytes: datagram, source: endpoint, destination: destination))
        }
        return packet
    }

    /// A datagram arriving from the network.
    func receive(_ datagram: SimulatedNetwork.Datagram) {
        let forwardTo = datagram.bytes.withUnsafeBytes { path.relayTarget($0, from: datagram.source, table: table) }
        if let forwardTo {
            // A relay sends the envelope on unchanged, as a worker does.
            network.send(.init(bytes: datagram.bytes, source: endpoint, destination: forwardTo))
            return
        }
        var bytes = datagram.bytes
        let packet = bytes.withUnsafeMutableBytes {
            path.open($0, from: datagram.source, table: table, now: network.clock.now()).map(Array.init)
        }
        if let packet { delivered.append(packet) }
    }

    /// The control plane's transport: into the simulated network, from this node's endpoint.
    private struct Transport: ControlTransport {
        let network: SimulatedNetwork
        let source: Source
        let tables: ForwardingTableHolder
        var family: UDPSocket.Family { .ipv4 }

        func send(_ bytes: UnsafeRawBufferPointer, to endpoint: UDPEndpoint, worker: Int) {
            if bytes[0] == MessageType.response.rawValue {
                let index = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                if tables.load().0.inbound[index] == nil { network.responsesAheadOfTheirTable.add(1, ordering: .relaxed) }
            }
            network.send(.init(bytes: Array(bytes), source: source.endpoint, destination: endpoint))
        }
    }
}

/// A minimal IPv4 packet (header checksums are not the engine's business).
func ipv4Packet(from source: IPv4Address, to destination: IPv4Address, payload: [UInt8]) -> [UInt8] {
    let total = 20 + payload.count
    var bytes: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 0, 0, 0, 64, 17, 0, 0]
    for address in [source, destination] {
        bytes += [UInt8(address.value >> 24), UInt8(address.value >> 16 & 0xff),
                  UInt8(address.value >> 8 & 0xff), UInt8(address.value & 0xff)]
    }
    return bytes + payload
}
