import Glibc
import Logging
import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumDevice
import XCTest

@testable import QuantumNode

/// Two engines in one process: TUN queues are socketpairs, the underlay is real UDP on loopback.
final class NodePairTests: XCTestCase {
    /// One side of the pair: the engine plus the "kernel" end of its TUN queue.
    struct Side {
        let node: Node
        let kernel: PacketQueue
        let mapping: Mapping
        let keyPair: StaticKeyPair
        /// The engine's ends of the TUN queue and the socket (to hand them to a successor).
        let queue: PacketQueue
        let socket: UDPSocket
        let settings: Node.Settings
    }

    private var started: [Node] = []
    private var descriptors: [PacketQueue] = []

    override func tearDown() {
        started.forEach { $0.stop() }
        descriptors.forEach { $0.close() }
        super.tearDown()
    }

    /// Ports of the sockets opened so far: with SO_REUSEPORT, binding port 0 may hand out a
    /// port another of this process's sockets holds, and the two would share its datagrams.
    private var ports: Set<UInt16> = []

    /// A socket on a port no other side uses.
    private func openSocket(overIPv6: Bool) throws -> UDPSocket {
        while true {
            let socket = overIPv6
                ? try UDPSocket(family: .ipv6, bindAddress: "::1", port: 0, ipv6Only: true)
                : try UDPSocket(family: .ipv4, bindAddress: "127.0.0.1", port: 0)
            descriptors.append(PacketQueue(fileDescriptor: socket.fileDescriptor))
            if ports.insert(socket.localPort).inserted { return socket }
        }
    }

    /// One engine with its socket on IPv4 loopback, or (with `overIPv6`) on `::1` with IPv4 disabled.
    func makeSide(_ address: String, keyPair: StaticKeyPair = .generate(), overIPv6: Bool = false,
                  removalGrace: UInt64 = 120_000_000_000, compression: Bool = false) throws -> Side {
        let (engineEnd, kernelEnd) = try PacketQueue.pair()
        descriptors += [engineEnd, kernelEnd]
        let socket = try openSocket(overIPv6: overIPv6)
        let privateIP = IPv4Address(address)!
        var logger = Logger(label: "test-\(address)")
        logger.logLevel = .warning
        let settings = Node.Settings(privateIP: privateIP, mtu: 1420, useIPv4: !overIPv6, useIPv6: overIPv6,
                                     removalGrace: removalGrace, compression: compression)
        let node = try Node(settings: settings, keyPair: keyPair, queues: [engineEnd], sockets: [socket], logger: logger)
        let mapping = Mapping(machineID: String(repeating: "ab", count: 16), privateIP: privateIP,
                              ipv4: overIPv6 ? nil : IPv4Address("127.0.0.1"),
                              ipv6: overIPv6 ? IPv6Address("::1") : nil, port: socket.localPort,
                              publicKey: keyPair.publicKey, plugins: compression ? [Plugin.compression.rawValue] : [])
        started.append(node)
        node.start()
        return Side(node: node, kernel: kernelEnd, mapping: mapping, keyPair: keyPair, queue: engineEnd, socket: socket,
                    settings: settings)
    }

    func connect(_ sides: [Side]) {
        let mappings = Dictionary(uniqueKeysWithValues: sides.map { ($0.mapping.privateIP, $0.mapping) })
        sides.forEach { $0.node.apply(mappings.map { MappingUpdate(address: $0.key, mapping: $0.value, createRevision: 1) }) }
    }

    func packet(from source: String, to destination: String, payload: [UInt8]) -> [UInt8] {
        ipv4Packet(from: IPv4Address(source)!, to: IPv4Address(destination)!, payload: payload)
    }

    func send(_ bytes: [UInt8], into side: Side) {
        bytes.withUnsafeBytes { _ = side.kernel.write($0.baseAddress!, length: $0.count) }
    }

    /// Waits up to `seconds` for a packet to come out of `side`'s TUN queue.
    func receive(from side: Side, seconds: Double = 3) -> [UInt8]? {
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 2048)
        while Date() < deadline {
            let count = buffer.withUnsafeMutableBytes { side.kernel.read(into: $0.baseAddress!, capacity: $0.count) }
            if count > 0 { return Array(buffer[0..<count]) }
            usleep(5_000)
        }
        return nil
    }

    /// Sends `bytes` repeatedly (the first packets start the handshake and are dropped) until one arrives.
    func deliver(_ bytes: [UInt8], from a: Side, to b: Side) -> [UInt8]? {
        for _ in 0..<30 {
            send(bytes, into: a)
            if let received = receive(from: b, seconds: 0.3) { return received }
        }
        return nil
    }

    /// Two sides 10.99.4.1 and 10.99.4.2 that have exchanged a packet each way.
    private func establishedPair(file: StaticString = #filePath, line: UInt = #line) throws -> (Side, Side) {
        let a = try makeSide("10.99.4.1")
        let b = try makeSide("10.99.4.2")
        connect([a, b])
        let forth = packet(from: "10.99.4.1", to: "10.99.4.2", payload: Array("hello b".utf8))
        XCTAssertEqual(deliver(forth, from: a, to: b), forth, file: file, line: line)
        let back = packet(from: "10.99.4.2", to: "10.99.4.1", payload: Array("hello a".utf8))
        XCTAssertEqual(deliver(back, from: b, to: a), back, file: file, line: line)
        return (a, b)
    }

    func testPacketsCrossBothWaysAfterHandshake() throws {
        let (a, b) = try establishedPair()
        XCTAssertGreaterThanOrEqual(a.node.counters()["handshakes_completed"] ?? 0, 1)
        XCTAssertGreaterThanOrEqual(b.node.counters()["rx_packets"] ?? 0, 1)
    }

    /// A rolling restart inside one process: a paused node's links go to a new node built on the
    /// same queue and socket; packets that arrived while frozen are delivered, and the peer
    /// notices nothing (no new handshake, every packet opens first time).
    func testPausedNodeHandsItsLinksToASuccessorWithoutLossOrHandshake() throws {
        let (a, b) = try establishedPair()
        let handshakes = b.node.counters()["handshakes_completed"]

        a.node.pause()
        let frozenForth = packet(from: "10.99.4.1", to: "10.99.4.2", payload: Array("sent while frozen".utf8))
        let frozenBack = packet(from: "10.99.4.2", to: "10.99.4.1", payload: Array("received while frozen".utf8))
        send(frozenForth, into: a)
        send(frozenBack, into: b)
        XCTAssertNil(receive(from: b, seconds: 0.3), "a frozen node reads nothing")

        var links = a.node.links()
        XCTAssertEqual(links.count, 1)
        var logger = Logger(label: "successor")
        logger.logLevel = .warning
        let successor = try Node(settings: a.settings, keyPair: a.keyPair, queues: [a.queue], sockets: [a.socket], logger: logger)
        started.append(successor)
        let (sessions, problems) = successor.restore(
            mappings: [MappingUpdate(address: b.mapping.privateIP, mapping: b.mapping, createRevision: 1)], links: &links)
        XCTAssertGreaterThanOrEqual(sessions, 1)
        XCTAssertEqual(problems, [])
        XCTAssertTrue(links.allSatisfy { $0.current?.keyMaterial.allSatisfy { $0 == 0 } ?? true }, "handed keys are wiped")
        successor.start()

        XCTAssertEqual(receive(from: b), frozenForth, "the packet that waited in the TUN queue")
        XCTAssertEqual(receive(from: a), frozenBack, "the packet that waited in the socket")
        for round in 0..<5 {
            let there = packet(from: "10.99.4.1", to: "10.99.4.2", payload: Array("after \(round)".utf8))
            send(there, into: a)
            XCTAssertEqual(receive(from: b), there, "first try: no handshake needed")
            let home = packet(from: "10.99.4.2", to: "10.99.4.1", payload: Array("after, back \(round)".utf8))
            send(home, into: b)
            XCTAssertEqual(receive(from: a), home)
        }
        XCTAssertEqual(b.node.counters()["handshakes_completed"], handshakes, "the peer saw no new handshake")
        XCTAssertEqual(successor.counters()["handshakes_initiated"], 0)
        XCTAssertEqual(b.node.counters()["drop_replay"], 0, "no counter was used twice")
    }

    func testFirstPacketWaitsForTheHandshakeInsteadOfBeingDropped() throws {
        let a = try makeSide("10.99.4.1")
        let b = try makeSide("10.99.4.2")
        connect([a, b])
        XCTAssertTrue(eventually { a.node.hasRoute(to: b.mapping.privateIP) && b.node.hasRoute(to: a.mapping.privateIP) })
        let first = packet(from: "10.99.4.1", to: "10.99.4.2", payload: Array("first".utf8))
        // b may have handshaken with a on its own just before (reflexive probing at start): then
        // the worker sends the packet at once. Mostly there is no session yet and it is staged;
        // either way it is sent exactly once and never dropped.
        send(first, into: a)
        XCTAssertEqual(receive(from: b, seconds: 3), first)
        let counters = a.node.counters()
        XCTAssertEqual(counters["staged_sent"]! + counters["tx_packets"]!, 1, "staged, or sent by the worker: once")
        XCTAssertEqual(a.node.counters()["drop_no_session"], 0)
    }

    func testPacketsCrossOverAnIPv6Underlay() throws {
        let a = try makeSide("10.99.4.1", overIPv6: true)
        let b = try makeSide("10.99.4.2", overIPv6: true)
        connect([a, b])
        let forth = packet(from: "10.99.4.1", to: "10.99.4.2", payload: Array("over v6".utf8))
        XCTAssertEqual(deliver(forth, from: a, to: b), forth)
        let back = packet(from: "10.99.4.2", to: "10.99.4.1", payload: Array("and back".utf8))
        XCTAssertEqual(deliver(back, from: b, to: a), back)
    }

    func testUnknownDestinationIsDroppedAndCounted() throws {
        let a = try makeSide("10.99.4.1")
        let b = try makeSide("10.99.4.2")
        connect([a, b])
        send(packet(from: "10.99.4.1", to: "10.99.9.9", payload: [1, 2, 3]), into: a)
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline, a.node.counters()["drop_no_route"] == 0 { usleep(10_000) }
        XCTAssertEqual(a.node.counters()["drop_no_route"], 1)
    }

    func testInnerSourceOfAnotherNodeIsDroppedAsSpoofed() throws {
        let a = try makeSide("10.99.4.1")
        let b = try makeSide("10.99.4.2")
        let c = try makeSide("10.99.4.3")
        connect([a, b, c])
        // Establish a session a→b first.
        let honest = packet(from: "10.99.4.1", to: "10.99.4.2", payload: [7])
        XCTAssertEqual(deliver(honest, from: a, to: b), honest)
        // a claims to be c: b must refuse to deliver it.
        send(packet(from: "10.99.4.3", to: "10.99.4.2", payload: [6, 6, 6]), into: a)
        XCTAssertNil(receive(from: b, seconds: 1))
        XCTAssertEqual(b.node.counters()["drop_spoofed"], 1)
    }

    func testMappingAddedLaterBecomesReachableAndRemovedOneIsNot() throws {
        let a = try makeSide("10.99.4.1", removalGrace: 0)
        let b = try makeSide("10.99.4.2")
        connect([a])
        connect([b])
        let forth = packet(from: "10.99.4.1", to: "10.99.4.2", payload: [1])
        send(forth, into: a)
        XCTAssertNil(receive(from: b, seconds: 0.5))
        connect([a, b])
        XCTAssertEqual(deliver(forth, from: a, to: b), forth)
        a.node.apply([MappingUpdate(address: b.mapping.privateIP, mapping: nil, createRevision: 0)])
        XCTAssertTrue(eventually { !a.node.hasRoute(to: b.mapping.privateIP) })
        send(forth, into: a)
        XCTAssertNil(receive(from: b, seconds: 0.5))
    }

    func testPeerWithWrongKeyInMappingGetsNoSession() throws {
        let a = try makeSide("10.99.4.1")
        let b = try makeSide("10.99.4.2")
        // a believes b has some other key: b cannot answer for it.
        var wrong = b.mapping
        wrong.publicKey = StaticKeyPair.generate().publicKey
        let forA = [a.mapping.privateIP: a.mapping, b.mapping.privateIP: wrong]
        a.node.apply(forA.map { MappingUpdate(address: $0.key, mapping: $0.value, createRevision: 1) })
        connect([b, a])
        a.node.apply(forA.map { MappingUpdate(address: $0.key, mapping: $0.value, createRevision: 1) })
        let forth = packet(from: "10.99.4.1", to: "10.99.4.2", payload: [1])
        XCTAssertNil(deliver(forth, from: a, to: b))
        XCTAssertEqual(b.node.counters()["rx_packets"], 0)
    }
}

/// Waits up to `seconds` for `condition`, which other threads make true (a node's counters,
/// its table); false if it never held. For state with no descriptor to wait on.
func eventually(seconds: Double = 3, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(1_000)
    }
    return condition()
}
