import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumDevice
import XCTest

@testable import QuantumNode

/// Handshakes and timers on the simulated network, driven by a fake clock: minutes of
/// protocol time in milliseconds, no threads, no sleeping.
final class ControlPlaneTests: XCTestCase {
    private var network = SimulatedNetwork()

    override func setUp() {
        network = SimulatedNetwork()
    }

    /// Two connected nodes, a (10.7.0.1) and b (10.7.0.2), with persistent keepalives
    /// every `keepalive` (0 = off).
    private func pair(keepalive: UInt64 = 0) -> (SimulatedNode, SimulatedNode) {
        let a = network.addNode("10.7.0.1") { $0.keepalive = keepalive }
        let b = network.addNode("10.7.0.2") { $0.keepalive = keepalive }
        network.connectAll()
        return (a, b)
    }

    private func count(_ node: SimulatedNode, _ name: ControlCounter) -> UInt64 { node.control.counters.value(name) }
    private func count(_ node: SimulatedNode, _ name: WorkerCounter) -> UInt64 { node.path.counters.value(name) }

    /// The oldest age any session of `node` has reached.
    private func oldestSession(_ node: SimulatedNode) -> UInt64 {
        let now = network.clock.now()
        return node.control.peers.values.flatMap(\.sessions).map { now - $0.createdAt }.max() ?? 0
    }

    /// Runs `minutes` of traffic, one packet a second from each sender, and checks each
    /// arrives at once and no session ever comes near the reject limit.
    private func runTraffic(from senders: [SimulatedNode], minutes: Double, file: StaticString = #filePath, line: UInt = #line) {
        var oldest: UInt64 = 0
        let ticksPerSecond = Int(1_000_000_000 / ControlPlane.tickInterval)
        var tick = 0
        for _ in 0..<Int(minutes * 60) * ticksPerSecond {
            let before = network.nodes.map(\.delivered.count)
            network.advance(by: ControlPlane.tickInterval) {
                if tick % ticksPerSecond == 0 {
                    for sender in senders {
                        let receiver = network.nodes.first { $0 !== sender }!
                        sender.send(to: receiver.address)
                    }
                }
            }
            if tick % ticksPerSecond == 0 {
                let after = network.nodes.map(\.delivered.count)
                XCTAssertEqual(zip(after, before).map { $0 - $1 }.reduce(0, +), senders.count,
                               "a packet was not delivered at once", file: file, line: line)
            }
            tick += 1
            oldest = max(oldest, network.nodes.map(oldestSession).max() ?? 0)
        }
        XCTAssertLessThan(oldest, SessionLimits.rejectAfterTime, "a session reached the reject limit", file: file, line: line)
    }

    func testFirstPacketIsStagedAndDeliveredAfterTheHandshake() {
        let (a, b) = pair()
        let packet = a.send(to: b.address, payload: Array("first".utf8))
        XCTAssertTrue(b.delivered.isEmpty)
        network.settle()
        XCTAssertEqual(b.delivered, [packet])
        XCTAssertEqual(count(a, .stagedSent), 1)
        XCTAssertEqual(count(a, .handshakesInitiated), 1)
        XCTAssertEqual(count(a, .handshakesCompleted), 1)
        XCTAssertEqual(count(b, .handshakesCompleted), 1)
        XCTAssertEqual(count(a, .dropNoSession), 0)
        XCTAssertEqual(network.responsesAheadOfTheirTable.load(ordering: .relaxed), 0,
                       "b answered before its workers could know the session")
    }

    /// A node that registered a moment ago hears from a peer before it has read the
    /// map: once the peer's mapping arrives it answers with its own handshake, so the
    /// first packet gets through without waiting for the peer's retry.
    func testNewcomerGreetsAPeerThatReachedItBeforeItsMapping() {
        let a = network.addNode("10.7.0.1")
        let b = network.addNode("10.7.0.2")
        network.apply([a.update, b.update], to: a)
        let start = network.clock.now()
        let packet = a.send(to: b.address, payload: Array("early".utf8))
        network.settle()
        XCTAssertEqual(count(b, .handshakesRejected), 1, "b does not know a's key yet")
        XCTAssertTrue(b.delivered.isEmpty)
        network.apply([a.update, b.update], to: b)
        XCTAssertEqual(b.delivered, [packet], "the staged packet arrives before a's retry is due")
        XCTAssertLessThan(network.clock.now() - start, SessionLimits.rekeyTimeout)
        XCTAssertEqual(count(b, .handshakesInitiated), 1)
    }

    func testAStrangerIsForgottenAfterItsMemory() {
        let a = network.addNode("10.7.0.1")
        let b = network.addNode("10.7.0.2")
        network.apply([a.update, b.update], to: a)
        a.send(to: b.address)
        network.settle()
        // a goes away (no retries reach b); past the memory, a's mapping arriving at b
        // starts nothing.
        network.remove(a)
        network.advance(by: ControlPlane.strangerMemory + ControlPlane.tickInterval)
        network.apply([a.update, b.update], to: b)
        XCTAssertEqual(count(b, .handshakesInitiated), 0)
    }

    func testInitiatorSendingAloneRekeysBeforeTheRejectLimit() {
        let (a, b) = pair()
        runTraffic(from: [a], minutes: 10)
        XCTAssertEqual(count(a, .stagedSent), 1, "only the very first packet waited for a session")
        XCTAssertGreaterThanOrEqual(count(a, .handshakesInitiated), 5)
        XCTAssertEqual(b.delivered.count, 600)
    }

    func testResponderSendingAloneMakesTheInitiatorRekeyOnReceive() {
        let (a, b) = pair()
        a.send(to: b.address)
        network.settle()
        // From now on only b (the responder) sends; a only receives.
        runTraffic(from: [b], minutes: 10)
        XCTAssertEqual(count(b, .stagedSent), 0, "b never waited for a session")
        XCTAssertGreaterThanOrEqual(count(a, .handshakesInitiated), 4, "a rekeyed what it receives on")
        XCTAssertEqual(count(b, .handshakesInitiated), 0)
    }

    func testTrafficBothWaysKeepsRekeying() {
        let (a, b) = pair()
        a.send(to: b.address)
        network.settle()
        runTraffic(from: [a, b], minutes: 10)
        XCTAssertEqual(count(a, .stagedSent) + count(b, .stagedSent), 1)
        XCTAssertGreaterThanOrEqual(count(a, .handshakesInitiated) + count(b, .handshakesInitiated), 5)
    }

    func testBothSidesInitiatingAtOnceBothKeepRekeying() {
        let (a, b) = pair()
        a.send(to: b.address)
        b.send(to: a.address)
        network.settle()
        XCTAssertEqual(a.delivered.count, 1)
        XCTAssertEqual(b.delivered.count, 1)
        XCTAssertEqual(count(a, .handshakesInitiated), 1)
        XCTAssertEqual(count(b, .handshakesInitiated), 1)
        // Each side sends with the session it initiated, so each rekeys on time.
        XCTAssertEqual(a.peer(b.address)?.current?.isInitiator, true)
        XCTAssertEqual(b.peer(a.address)?.current?.isInitiator, true)
        runTraffic(from: [a, b], minutes: 10)
        XCTAssertEqual(count(a, .stagedSent) + count(b, .stagedSent), 2, "no packet waited after the first two")
        XCTAssertGreaterThanOrEqual(count(a, .handshakesInitiated), 4)
        XCTAssertGreaterThanOrEqual(count(b, .handshakesInitiated), 4)
    }

    func testUnansweredHandshakeIsRetriedThenGivenUp() {
        let (a, b) = pair()
        network.unreachable = [b.endpoint]
        a.send(to: b.address)
        network.settle()
        network.advance(by: seconds(89))
        // One attempt at once and one every rekey timeout (5 s) until 90 s.
        XCTAssertEqual(count(a, .handshakesInitiated), 18)
        XCTAssertEqual(count(a, .handshakeTimeouts), 0)
        network.advance(by: seconds(1))
        XCTAssertEqual(count(a, .handshakeTimeouts), 1)
        XCTAssertEqual(count(a, .stagedDropped), 1)
        network.advance(by: seconds(60))
        XCTAssertEqual(count(a, .handshakesInitiated), 18, "no attempts without new traffic")
        // New traffic starts over, and once b is reachable the packet gets through.
        network.unreachable = []
        let packet = a.send(to: b.address)
        network.settle()
        XCTAssertEqual(count(a, .handshakesInitiated), 19)
        XCTAssertEqual(b.delivered, [packet])
    }

    func testPeerRestartedWithANewKeyGetsANewHandshake() {
        let (a, b) = pair()
        a.send(to: b.address)
        network.settle()
        XCTAssertEqual(b.delivered.count, 1)
        // b restarts at the same address and port with a new key; a keeps sending meanwhile.
        network.remove(b)
        let restarted = network.addNode("10.7.0.2", port: b.registeredPort)
        restarted.control.enqueue(network.nodes.map(\.update))
        network.advance(by: seconds(3)) { a.send(to: b.address) }
        XCTAssertTrue(restarted.delivered.isEmpty, "a still seals for the old key")
        // The datastore announces the new key: a must initiate to it.
        a.control.enqueue([restarted.update])
        network.advance(by: seconds(1)) { a.send(to: b.address) }
        XCTAssertEqual(a.peer(b.address)?.mapping.publicKey, restarted.keyPair.publicKey)
        XCTAssertEqual(a.peer(b.address)?.current?.isInitiator, true)
        XCTAssertFalse(restarted.delivered.isEmpty)
        let before = restarted.delivered.count
        a.send(to: b.address)
        network.settle()
        XCTAssertEqual(restarted.delivered.count, before + 1)
    }

    func testEventsForRetiredIndicesClearTheirFlags() throws {
        let (a, b) = pair()
        a.send(to: b.address)
        network.settle()
        let peer = try XCTUnwrap(b.peer(a.address))
        let signals = peer.signals
        let retired: UInt32 = 7 // an index no session has (any more)
        XCTAssertNil(b.control.owners[retired])
        // A worker with an old table raised each flag for a session that is gone.
        XCTAssertTrue(PeerSignals.raise(signals.confirmPending))
        b.control.post(.sessionConfirmed(retired, from: a.endpoint, signals))
        XCTAssertTrue(PeerSignals.raise(signals.roamPending))
        b.control.post(.roamed(retired, to: UDPEndpoint(SimulatedNetwork.underlayIP, port: 9, family: .ipv4), signals))
        network.settle()
        XCTAssertFalse(signals.confirmPending.load(ordering: .relaxed), "confirmPending stuck")
        XCTAssertFalse(signals.roamPending.load(ordering: .relaxed), "roamPending stuck")
        XCTAssertEqual(peer.endpoint, a.endpoint, "an event for a retired index moved the peer")
        // A handshake request raised, from an old table, on the signals of a peer that
        // was replaced meanwhile (new key).
        let old = try XCTUnwrap(a.peer(b.address)).signals
        var moved = b.mapping
        moved.publicKey = StaticKeyPair.generate().publicKey
        a.control.enqueue([MappingUpdate(address: b.address, mapping: moved, createRevision: network.newRevision())])
        network.settle()
        XCTAssertTrue(PeerSignals.raise(old.handshakeWanted))
        a.control.post(.handshakeWanted(b.address, old))
        network.settle()
        XCTAssertFalse(old.handshakeWanted.load(ordering: .relaxed), "handshakeWanted stuck")
    }

    func testResponderSessionIsConfirmedAfterAStaleConfirmation() throws {
        let (a, b) = pair()
        a.send(to: b.address)
        network.settle()
        let signals = try XCTUnwrap(b.peer(a.address)).signals
        // A stale confirmation for a retired index, then a new handshake from a.
        XCTAssertTrue(PeerSignals.raise(signals.confirmPending))
        b.control.post(.sessionConfirmed(7, from: a.endpoint, signals))
        network.advance(by: seconds(121)) { a.send(to: b.address) }
        // b promoted the new responder session (its confirmation was not silenced).
        let current = try XCTUnwrap(b.peer(a.address)?.current)
        XCTAssertLessThan(network.clock.now() - current.createdAt, seconds(5))
    }

    func testRoamingFollowsAuthenticatedPacketsOnly() throws {
        let (a, b) = pair()
        a.send(to: b.address)
        network.settle()
        // Garbage from elsewhere naming a's session does not move a's idea of b.
        let index = try XCTUnwrap(a.peer(b.address)?.current?.localIndex)
        var forged = [UInt8](repeating: 0, count: 64)
        forged[0] = MessageType.transport.rawValue
        withUnsafeBytes(of: index.littleEndian) { forged.replaceSubrange(4..<8, with: $0) }
        let elsewhere = UDPEndpoint(SimulatedNetwork.underlayIP, port: 9_999, family: .ipv4)
        a.receive(.init(bytes: forged, source: elsewhere, destination: a.endpoint))
        network.settle()
        XCTAssertEqual(count(a, .dropAuth), 1)
        XCTAssertEqual(a.peer(b.address)?.endpoint, b.endpoint)
        // b's NAT rebinds: its next authenticated packet moves a's endpoint for it.
        let moved = UDPEndpoint(SimulatedNetwork.underlayIP, port: 9_998, family: .ipv4)
        b.endpoint = moved
        b.send(to: a.address)
        network.settle()
        XCTAssertEqual(a.peer(b.address)?.endpoint, moved)
        a.send(to: b.address)
        network.settle()
        XCTAssertEqual(b.delivered.count, 2)
    }

    func testPassiveKeepaliveAnswersDataButNeverAKeepalive() {
        let (a, b) = pair()
        a.send(to: b.address)
        network.settle()
        XCTAssertEqual(count(a, .keepalivesSent), 1, "the initiator confirms the session")
        // b received data and sends nothing: after the keepalive timeout it sends one.
        network.advance(by: SessionLimits.keepaliveTimeout - seconds(0.5))
        XCTAssertEqual(count(b, .keepalivesSent), 0)
        network.advance(by: seconds(1))
        XCTAssertEqual(count(b, .keepalivesSent), 1)
        XCTAssertEqual(count(a, .keepalivesReceived), 1)
        // An idle link stays quiet: nobody answers a keepalive.
        network.advance(by: seconds(60))
        XCTAssertEqual(count(b, .keepalivesSent), 1)
        XCTAssertEqual(count(a, .keepalivesSent), 1)
    }

    func testPacketForAnotherInnerDestinationIsDroppedAndCounted() throws {
        let (a, b) = pair()
        a.send(to: b.address)
        network.settle()
        // a seals, with its session to b, a packet addressed to some third node.
        let session = try XCTUnwrap(a.peer(b.address)?.current)
        let packet = ipv4Packet(from: a.address, to: IPv4Address("10.7.0.9")!, payload: [4])
        var buffer = [UInt8](repeating: 0, count: packet.count + WireFormat.transportOverhead)
        buffer.replaceSubrange(WireFormat.transportHeaderSize..<WireFormat.transportHeaderSize + packet.count, with: packet)
        let length = try XCTUnwrap(buffer.withUnsafeMutableBytes { session.seal($0.baseAddress!, payloadLength: packet.count, worker: 0, flags: 0) })
        b.receive(.init(bytes: Array(buffer[0..<length]), source: a.endpoint, destination: b.endpoint))
        XCTAssertEqual(b.delivered.count, 1, "only the first packet")
        XCTAssertEqual(count(b, .dropDestination), 1)
    }

    // MARK: - Persistent keepalive (--keepalive)

    /// Whether `datagram` is a keepalive (an empty transport message).
    private func isKeepalive(_ datagram: SimulatedNetwork.Datagram) -> Bool {
        datagram.bytes[0] == MessageType.transport.rawValue && datagram.bytes.count == WireFormat.transportOverhead
    }

    /// a sends one packet; once b's passive keepalive is out (10 s), the link is idle.
    /// Returns when the idle time starts.
    private func idleLink(_ a: SimulatedNode, _ b: SimulatedNode) -> UInt64 {
        a.send(to: b.address)
        network.settle()
        network.advance(by: SessionLimits.keepaliveTimeout + seconds(1))
        return network.clock.now()
    }

    func testPersistentKeepaliveHoldsAnIdleLinkOpenOncePerInterval() throws {
        let keepalive = seconds(25)
        let (a, b) = pair(keepalive: keepalive)
        let start = idleLink(a, b)
        network.advance(by: seconds(600))
        for (node, peer) in [(a, b), (b, a)] {
            let sent = network.sent(from: node.endpoint, since: start - seconds(30))
            var previous = try XCTUnwrap(sent.last { $0.at < start }, "\(node.address) sent nothing before").at
            var keepalives = 0
            for (at, datagram) in sent where at >= start {
                // Nothing leaves the node for longer than the interval (plus a timer tick) ...
                XCTAssertLessThanOrEqual(at - previous, keepalive + ControlPlane.tickInterval, "\(node.address) went quiet")
                if isKeepalive(datagram), at - previous >= keepalive {
                    keepalives += 1
                } else if isKeepalive(datagram) {
                    // ... and a keepalive sooner than the interval only confirms a new session.
                    XCTAssertEqual(sent.last { $0.at <= at && $0.datagram.bytes[0] == MessageType.initiation.rawValue }?.at, at,
                                   "\(node.address) sent a keepalive \(Double(at - previous) / 1e9) s after its last datagram")
                }
                previous = at
            }
            XCTAssertLessThanOrEqual(network.clock.now() - previous, keepalive + ControlPlane.tickInterval,
                                     "\(node.address) went quiet at the end")
            // One per keepalive interval, less an interval or two that a rekey handshake restarted.
            XCTAssertGreaterThanOrEqual(keepalives, 600 / 25 - 2, "\(node.address)")
            XCTAssertLessThanOrEqual(keepalives, 600 / 25, "\(node.address)")
            XCTAssertEqual(count(node, .persistentKeepalivesSent), UInt64(keepalives), "\(node.address)")
            XCTAssertNotNil(node.peer(peer.address)?.current, "the link is still established")
        }
        XCTAssertLessThan(oldestSession(a), SessionLimits.rejectAfterTime)
    }

    func testNoPersistentKeepaliveWhenOff() {
        let (a, b) = pair(keepalive: 0)
        let start = idleLink(a, b)
        network.advance(by: seconds(600))
        XCTAssertEqual(network.sent(from: a.endpoint, since: start).count, 0)
        XCTAssertEqual(network.sent(from: b.endpoint, since: start).count, 0)
        XCTAssertEqual(count(a, .persistentKeepalivesSent) + count(b, .persistentKeepalivesSent), 0)
    }

    func testTrafficSuppressesTheSendersPersistentKeepalive() {
        let (a, b) = pair(keepalive: seconds(25))
        runTraffic(from: [a], minutes: 3)
        XCTAssertEqual(count(a, .persistentKeepalivesSent), 0, "a sends data every second")
        XCTAssertEqual(count(b, .persistentKeepalivesSent), 0, "b's passive keepalives answer a's data every 10 s")
        XCTAssertGreaterThan(count(b, .keepalivesSent), 0)
    }

    func testPersistentKeepaliveNeverOutlivesItsSession() throws {
        let (a, b) = pair(keepalive: seconds(25))
        let start = idleLink(a, b)
        // From now on nothing gets through between a and b.
        network.unreachable = [b.endpoint]
        let createdAt = try XCTUnwrap(a.peer(b.address)?.current).createdAt
        network.advance(by: seconds(300))
        let initiated = count(a, .handshakesInitiated)
        network.advance(by: seconds(300))
        XCTAssertNil(a.peer(b.address)?.current, "the session expired")
        XCTAssertEqual(count(a, .handshakesInitiated), initiated, "no handshakes once the rekey attempt gave up")
        let sent = network.sent(from: a.endpoint, since: start)
        let keepalives = sent.filter { isKeepalive($0.datagram) }
        XCTAssertGreaterThan(keepalives.count, 0)
        XCTAssertTrue(keepalives.allSatisfy { $0.at < createdAt + SessionLimits.rejectAfterTime },
                      "no keepalive after the session expired")
        // The rekey its keepalive started at 120 s is retried, then given up; nothing after.
        XCTAssertLessThanOrEqual(try XCTUnwrap(sent.last).at,
                                 createdAt + SessionLimits.rekeyAfterTime + ControlPlane.rekeyAttemptTime + seconds(25))
    }
}
