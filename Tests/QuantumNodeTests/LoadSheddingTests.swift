import QuantumCore
import QuantumCrypto
import QuantumDevice
import XCTest

@testable import QuantumNode

/// Under a handshake load, workers answer initiations without a valid mac2 with cookie
/// replies instead of handing them to the control thread; initiators retry with mac2;
/// initiations that do reach the control thread are limited per source address and per peer.
final class LoadSheddingTests: XCTestCase {
    private var network = SimulatedNetwork()
    /// A flooding address, distinct from the nodes' (they all use 127.0.0.1).
    private let flooder = IPv4Address("127.0.0.9")!
    /// A flooding address that holds cookies (one the flood did not use).
    private let attacker = IPv4Address("127.0.0.10")!

    override func setUp() {
        network = SimulatedNetwork()
    }

    private func endpoint(_ address: IPv4Address, port: UInt16) -> UDPEndpoint {
        UDPEndpoint(address, port: port, family: .ipv4)
    }

    /// A valid initiation to `node` from a key no mapping carries.
    private func strangerInitiation(to node: SimulatedNode, keys: StaticKeyPair = .generate()) throws -> [UInt8] {
        try Handshaker(localKeys: keys)
            .makeInitiation(peerPublicKey: node.keyPair.publicKey, senderIndex: 9, timestamp: network.clock.timestamp())
            .message
    }

    /// Puts `node` under load the way a flood does: its workers hand the control thread
    /// more handshake messages than `HandshakeLoad.backlogThreshold` before it takes a turn.
    /// The turn that follows drains them.
    private func flood(_ node: SimulatedNode) throws {
        let junk = try strangerInitiation(to: node)
        for port in 0...UInt16(HandshakeLoad.backlogThreshold) {
            node.receive(.init(bytes: junk, source: endpoint(flooder, port: 20_000 + port), destination: node.endpoint))
        }
        XCTAssertTrue(node.control.load.isUnderLoad(now: network.clock.now()), "the flood did not put the node under load")
        node.control.step()
    }

    /// How many initiations reached the control thread's Diffie-Hellman on `node`.
    private func handshakesAttempted(_ node: SimulatedNode) -> UInt64 {
        node.control.counters.value(.handshakesCompleted) + node.control.counters.value(.handshakesRejected)
    }

    /// The cookie `node` answers `message` from `source` with (taken from its reply on the network).
    private func cookie(from node: SimulatedNode, for message: [UInt8], source: UDPEndpoint) throws -> [UInt8] {
        let start = network.clock.now()
        node.receive(.init(bytes: message, source: source, destination: node.endpoint))
        let reply = try XCTUnwrap(network.sent(from: node.endpoint, since: start).last { $0.datagram.destination == source })
        return try XCTUnwrap(reply.datagram.bytes.withUnsafeBytes {
            CookieReply.openCookie($0, replierPublicKey: node.keyPair.publicKey, mac1: CookieReply.mac1(of: message))
        })
    }

    func testLoadIsDetectedFromTheBacklogAndEndsAfterTheHoldTime() throws {
        let node = network.addNode("10.8.0.1")
        XCTAssertFalse(node.control.load.isUnderLoad(now: network.clock.now()))
        try flood(node)
        network.clock.advance(by: HandshakeLoad.holdTime)
        XCTAssertFalse(node.control.load.isUnderLoad(now: network.clock.now()))
    }

    func testAFloodAnsweredWithCookiesKeepsTheNodeUnderLoad() throws {
        let node = network.addNode("10.8.0.1")
        try flood(node)
        // The flood goes on, now answered with cookies by the worker: the control thread sees none of it.
        let junk = try strangerInitiation(to: node)
        network.clock.advance(by: HandshakeLoad.holdTime / 2)
        for port in 0..<UInt16(HandshakeLoad.rateThreshold) {
            node.receive(.init(bytes: junk, source: endpoint(flooder, port: 30_000 + port), destination: node.endpoint))
        }
        XCTAssertEqual(node.control.pendingEventCount, 0)
        network.clock.advance(by: HandshakeLoad.holdTime - 1)
        XCTAssertTrue(node.control.load.isUnderLoad(now: network.clock.now()), "the node left load during the flood")
        network.clock.advance(by: 1)
        XCTAssertFalse(node.control.load.isUnderLoad(now: network.clock.now()), "the node stayed loaded after the flood")
    }

    func testUnderLoadAnInitiationWithoutMAC2GetsACookieAndTheRetryWithMAC2Completes() throws {
        let a = network.addNode("10.8.0.1")
        let b = network.addNode("10.8.0.2")
        network.connectAll()
        try flood(b)
        let attempted = handshakesAttempted(b)

        let packet = a.send(to: b.address)
        network.settle()

        XCTAssertEqual(b.delivered, [packet])
        XCTAssertEqual(b.path.counters.value(.cookieRepliesSent), 1)
        XCTAssertEqual(b.path.counters.value(.dropHandshakeMAC2), 1)
        XCTAssertEqual(a.control.counters.value(.cookieRepliesAccepted), 1)
        XCTAssertEqual(a.control.counters.value(.handshakesInitiated), 2, "no immediate retry with mac2")
        XCTAssertEqual(handshakesAttempted(b) - attempted, 1, "the initiation without mac2 reached Diffie-Hellman")
        XCTAssertEqual(b.control.counters.value(.handshakesCompleted), 1)
    }

    func testACookieIsUsedUntilItsLifetimeEnds() throws {
        let a = network.addNode("10.8.0.1")
        let b = network.addNode("10.8.0.2")
        network.connectAll()
        try flood(b)
        a.send(to: b.address)
        network.settle()
        let peer = try XCTUnwrap(a.peer(b.address))
        let received = try XCTUnwrap(peer.cookie).receivedAt

        func stamped(at time: UInt64) -> [UInt8] {
            var message = try! strangerInitiation(to: b)
            a.control.stamp(&message, index: 1, for: peer, now: time)
            return Array(message.suffix(WireFormat.macSize))
        }
        let zeros = [UInt8](repeating: 0, count: WireFormat.macSize)
        XCTAssertNotEqual(stamped(at: received + CookieReply.cookieLifetime - 1), zeros)
        XCTAssertEqual(stamped(at: received + CookieReply.cookieLifetime), zeros, "an expired cookie was used")
    }

    func testACookieReplyThatAnswersNothingOfOursIsRejected() throws {
        let a = network.addNode("10.8.0.1")
        let b = network.addNode("10.8.0.2")
        network.connectAll()
        try flood(b)
        // A reply to someone else's initiation, replayed to a.
        let initiation = try strangerInitiation(to: b)
        let source = endpoint(flooder, port: 30_000)
        let start = network.clock.now()
        b.receive(.init(bytes: initiation, source: source, destination: b.endpoint))
        let reply = try XCTUnwrap(network.sent(from: b.endpoint, since: start).last).datagram.bytes
        a.receive(.init(bytes: reply, source: b.endpoint, destination: a.endpoint))
        a.control.step()

        XCTAssertEqual(a.control.counters.value(.cookieRepliesRejected), 1)
        XCTAssertEqual(a.control.counters.value(.cookieRepliesAccepted), 0)
    }

    func testUnderLoadASourceAddressBeyondItsRateIsDroppedBeforeDiffieHellmanAndThePeerStillGetsThrough() throws {
        let a = network.addNode("10.8.0.1")
        let b = network.addNode("10.8.0.2")
        network.connectAll()
        try flood(b)
        // The flooder receives at its address, so it holds a cookie and sends valid mac2s.
        let source = endpoint(attacker, port: 40_000)
        let first = try strangerInitiation(to: b)
        let cookie = try cookie(from: b, for: first, source: source)
        let attempted = handshakesAttempted(b)
        let dropped = b.control.counters.value(.dropInitiationSourceRate)
        let sent = Int(SourceRateLimiter.burst) * 3
        for _ in 0..<sent {
            var message = try strangerInitiation(to: b)
            CookieReply.writeMAC2(in: &message, cookie: cookie)
            b.receive(.init(bytes: message, source: source, destination: b.endpoint))
        }
        b.control.step()

        XCTAssertEqual(handshakesAttempted(b) - attempted, SourceRateLimiter.burst)
        XCTAssertEqual(b.control.counters.value(.dropInitiationSourceRate) - dropped, UInt64(sent) - SourceRateLimiter.burst)
        XCTAssertTrue(b.control.load.isUnderLoad(now: network.clock.now()))
        let packet = a.send(to: b.address)
        network.settle()
        XCTAssertEqual(b.delivered, [packet], "the legitimate peer was shut out")
    }

    func testAPeerGetsAtMostOneInitiationAnsweredPerInterval() throws {
        let a = network.addNode("10.8.0.1")
        let b = network.addNode("10.8.0.2")
        network.connectAll()
        let handshaker = a.control.handshaker
        func initiation() throws -> [UInt8] {
            network.clock.advance(by: 1)  // a newer timestamp each time
            return try handshaker.makeInitiation(peerPublicKey: b.keyPair.publicKey, senderIndex: 5,
                                                 timestamp: network.clock.timestamp()).message
        }
        for _ in 0..<2 { b.receive(.init(bytes: try initiation(), source: a.endpoint, destination: b.endpoint)) }
        b.control.step()
        XCTAssertEqual(b.control.counters.value(.handshakesCompleted), 1)
        XCTAssertEqual(b.control.counters.value(.dropInitiationPeerRate), 1)

        network.clock.advance(by: ControlPlane.peerInitiationInterval)
        b.receive(.init(bytes: try initiation(), source: a.endpoint, destination: b.endpoint))
        b.control.step()
        XCTAssertEqual(b.control.counters.value(.handshakesCompleted), 2)
        XCTAssertEqual(b.control.counters.value(.dropInitiationPeerRate), 1)
    }

    func testNotUnderLoadHandshakesGoStraightToTheControlThread() throws {
        let a = network.addNode("10.8.0.1")
        let b = network.addNode("10.8.0.2")
        network.connectAll()
        // Junk addressed to b, but fewer messages than load needs.
        let junk = try strangerInitiation(to: b)
        for port in 1..<UInt16(HandshakeLoad.backlogThreshold) {
            b.receive(.init(bytes: junk, source: endpoint(flooder, port: port), destination: b.endpoint))
        }
        XCTAssertFalse(b.control.load.isUnderLoad(now: network.clock.now()))
        let packet = a.send(to: b.address)
        network.settle()

        XCTAssertEqual(b.delivered, [packet])
        XCTAssertEqual(a.control.counters.value(.handshakesInitiated), 1)
        for node in [a, b] {
            XCTAssertEqual(node.path.counters.value(.cookieRepliesSent), 0)
            XCTAssertEqual(node.path.counters.value(.dropHandshakeMAC2), 0)
            XCTAssertEqual(node.control.counters.value(.dropInitiationSourceRate), 0)
        }
    }
}
