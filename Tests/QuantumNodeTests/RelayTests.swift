import QuantumCore
import QuantumCrypto
import QuantumDevice
import XCTest

@testable import QuantumNode

/// Relays (`--relay`) on the simulated network: `a` and `b` cannot reach each other (a
/// firewall drops their direct datagrams), `r` offers itself as relay and both reach it.
final class RelayTests: XCTestCase {
    private var network: SimulatedNetwork!
    private var a: SimulatedNode!
    private var b: SimulatedNode!
    private var r: SimulatedNode!
    /// A payload that would show in any datagram carrying it in clear.
    private let marker: [UInt8] = Array("relay-plaintext-marker".utf8)

    override func setUp() {
        network = SimulatedNetwork()
        a = network.addNode("10.99.0.1")
        b = network.addNode("10.99.0.2")
        r = network.addNode("10.99.0.3", relay: true)
        network.connectAll()
        network.blocked = [(a.endpoint, b.endpoint)]
        // Both reach the relay, and have a session with it.
        a.send(to: r.address)
        b.send(to: r.address)
        network.settle()
        XCTAssertEqual(r.delivered.count, 2, "a and b each reached the relay directly")
    }

    /// Moves the clock one tick at a time until `condition` holds; returns the time it took, or
    /// fails after `limit`.
    private func time(within limit: UInt64, _ what: String, until condition: () -> Bool) -> UInt64? {
        let start = network.clock.now()
        while network.clock.now() - start <= limit {
            if condition() { return network.clock.now() - start }
            network.advance(by: ControlPlane.tickInterval)
        }
        XCTFail("\(what) did not happen within \(Double(limit) / 1e9) s")
        return nil
    }

    /// A moment after everything sent so far (sends in one settle share the clock's time).
    private func mark() -> UInt64 {
        network.clock.advance(by: 1_000_000)
        return network.clock.now()
    }

    /// `a` sends to `b`: the direct handshake goes unanswered, the one through `r` completes.
    private func relayAToB() {
        a.send(to: b.address, payload: marker)
        let took = time(within: ControlPlane.pathTryTime + seconds(1), "the first packet through the relay") {
            b.delivered.count == 1
        }
        XCTAssertNotNil(took)
        XCTAssertEqual(a.peer(b.address)?.relay, r.address, "a sends to b through r")
        XCTAssertEqual(b.peer(a.address)?.relay, r.address, "b answers a through r")
    }

    func testHandshakeAndDataGoThroughTheRelayWhenTheDirectPathIsBlocked() {
        let start = network.clock.now()
        relayAToB()
        XCTAssertEqual(b.delivered.last.map { Array($0.suffix(marker.count)) }, marker, "the staged packet arrived")
        XCTAssertGreaterThanOrEqual(network.clock.now() - start, ControlPlane.pathTryTime,
                                    "two direct attempts came first")
        XCTAssertNotNil(a.peer(b.address)?.current, "a has a session with b itself, end to end")

        // Data flows both ways, through the relay, with the end-to-end session.
        b.delivered.removeAll()
        let sent = mark()
        a.send(to: b.address, payload: marker)
        b.send(to: a.address, payload: marker)
        network.settle()
        XCTAssertEqual(b.delivered.count, 1)
        XCTAssertEqual(a.delivered.count, 1)
        XCTAssertEqual(network.sent(from: a.endpoint, since: sent).map(\.datagram.destination), [r.endpoint])
        XCTAssertEqual(network.sent(from: b.endpoint, since: sent).map(\.datagram.destination), [r.endpoint])
        XCTAssertGreaterThanOrEqual(r.path.counters.value(.relayForwarded), 2)
        XCTAssertEqual(r.path.counters.value(.relayRefused), 0)
        XCTAssertEqual(r.delivered.count, 2, "nothing relayed reached the relay's own device")
    }

    func testTheRelaySeesOnlyCiphertext() throws {
        let start = network.clock.now()
        relayAToB()
        let envelopes = network.sent(from: a.endpoint, since: start).map(\.datagram)
            .filter { $0.destination == r.endpoint && $0.bytes.first == MessageType.relayEnvelope.rawValue }
        XCTAssertFalse(envelopes.isEmpty)
        for envelope in envelopes {
            XCTAssertFalse(contains(envelope.bytes, marker), "no envelope carries the packet in clear")
        }
        // The relay has no session for the inner messages: handed to it directly, it cannot open one.
        let transport = try XCTUnwrap(envelopes.last { $0.bytes[WireFormat.relayHeaderSize] == MessageType.transport.rawValue })
        let inner = Array(transport.bytes[WireFormat.relayHeaderSize...])
        let refusedBefore = r.path.counters.value(.dropNoSession)
        r.receive(.init(bytes: inner, source: a.endpoint, destination: r.endpoint))
        XCTAssertEqual(r.path.counters.value(.dropNoSession), refusedBefore + 1)
        XCTAssertEqual(r.delivered.count, 2)
    }

    func testEnvelopesFromStrangersAndSpoofedSourcesAreRefused() throws {
        let start = network.clock.now()
        relayAToB()
        let envelope = try XCTUnwrap(network.sent(from: a.endpoint, since: start).map(\.datagram)
            .last { $0.destination == r.endpoint && $0.bytes.first == MessageType.relayEnvelope.rawValue })
        let stranger = UDPEndpoint(SimulatedNetwork.underlayIP, port: 39_999, family: .ipv4)
        var claimsB = envelope.bytes
        claimsB.withUnsafeMutableBytes { RelayEnvelope.writeHeader($0.baseAddress!, destination: a.address, source: b.address) }
        var toNowhere = envelope.bytes
        toNowhere.withUnsafeMutableBytes {
            RelayEnvelope.writeHeader($0.baseAddress!, destination: IPv4Address("10.99.0.77")!, source: a.address)
        }
        // A fourth node, in every map, that has no session with the relay.
        let c = network.addNode("10.99.0.4")
        network.connectAll()
        var spoofedToC = envelope.bytes
        spoofedToC.withUnsafeMutableBytes { RelayEnvelope.writeHeader($0.baseAddress!, destination: c.address, source: b.address) }
        var fromC = envelope.bytes
        fromC.withUnsafeMutableBytes { RelayEnvelope.writeHeader($0.baseAddress!, destination: a.address, source: c.address) }
        var toItself = envelope.bytes
        toItself.withUnsafeMutableBytes { RelayEnvelope.writeHeader($0.baseAddress!, destination: r.address, source: a.address) }
        let refused: [(String, [UInt8], UDPEndpoint)] = [
            ("from an endpoint that is no peer's", envelope.bytes, stranger),
            ("claiming b's address from a's endpoint", claimsB, a.endpoint),
            ("to an address outside the map", toNowhere, a.endpoint),
            ("to the relay itself", toItself, a.endpoint),
            ("too short", Array(envelope.bytes.prefix(WireFormat.minimumRelaySize - 1)), a.endpoint),
            ("claiming b's address from a's endpoint, to a third node", spoofedToC, a.endpoint),
            ("from a node the relay has no session with", fromC, c.endpoint),
        ]
        for (what, bytes, source) in refused {
            XCTAssertNil(bytes.withUnsafeBytes { r.path.relayTarget($0, from: source, table: r.table) }, what)
        }
        let before = r.path.counters.value(.relayForwarded)
        let sent = mark()
        for (_, bytes, source) in refused.prefix(3) {
            r.receive(.init(bytes: bytes, source: source, destination: r.endpoint))
        }
        XCTAssertEqual(r.path.counters.value(.relayForwarded), before)
        XCTAssertEqual(r.path.counters.value(.relayRefused), 3)
        XCTAssertTrue(network.sent(from: r.endpoint, since: sent).isEmpty, "the relay sent nothing on")

        // A node that does not offer itself as relay forwards nothing, even between its peers.
        XCTAssertNil(envelope.bytes.withUnsafeBytes { b.path.relayTarget($0, from: a.endpoint, table: b.table) })
        // The destination refuses an inner message that is not the named source's.
        var claimsR = envelope.bytes
        claimsR.withUnsafeMutableBytes { RelayEnvelope.writeHeader($0.baseAddress!, destination: b.address, source: r.address) }
        let delivered = b.delivered.count
        b.receive(.init(bytes: claimsR, source: r.endpoint, destination: b.endpoint))
        XCTAssertEqual(b.delivered.count, delivered)
        XCTAssertEqual(b.path.counters.value(.relayRefused), 1, "a's message in an envelope naming another source")
    }

    func testPathReturnsToDirectWhenTheFirewallOpens() {
        relayAToB()
        network.blocked = []
        let took = time(within: ControlPlane.directProbeInterval + seconds(1), "the return to the direct path") {
            a.peer(b.address)?.relay == nil && b.peer(a.address)?.relay == nil
        }
        XCTAssertNotNil(took)
        let sent = mark()
        a.send(to: b.address, payload: marker)
        b.send(to: a.address, payload: marker)
        network.settle()
        XCTAssertEqual(network.sent(from: a.endpoint, since: sent).map(\.datagram.destination), [b.endpoint])
        XCTAssertEqual(network.sent(from: b.endpoint, since: sent).map(\.datagram.destination), [a.endpoint])
        XCTAssertEqual(b.delivered.count, 2)
        XCTAssertEqual(a.delivered.count, 1)
    }

    func testTheDirectPathIsKeptWhileTheFirewallStaysShut() {
        relayAToB()
        network.advance(by: 3 * ControlPlane.directProbeInterval)
        XCTAssertEqual(a.peer(b.address)?.relay, r.address)
        XCTAssertEqual(b.peer(a.address)?.relay, r.address)
        XCTAssertGreaterThanOrEqual(a.control.counters.value(.directProbesSent), 2, "a probed the direct path")
        b.delivered.removeAll()
        a.send(to: b.address, payload: marker)
        network.settle()
        XCTAssertEqual(b.delivered.count, 1, "the relayed path still carries data")
    }

    func testSnapshotsShowThePath() {
        relayAToB()
        a.control.publishDirectory()
        let states = a.control.peerStates(now: network.clock.now())
        XCTAssertEqual(states.first { $0.privateIP == b.address }?.relay, r.address)
        XCTAssertNil(states.first { $0.privateIP == r.address }?.relay)
    }

    /// Neither end has a session with the relay yet: the initiator makes one when it looks
    /// for a relay, the responder when the first relayed handshake reaches it, and the
    /// handshake after that goes through.
    func testSessionsWithTheRelayAreMadeOnDemand() {
        let other = SimulatedNetwork()
        let c = other.addNode("10.99.0.1")
        let d = other.addNode("10.99.0.2")
        let relay = other.addNode("10.99.0.3", relay: true)
        other.connectAll()
        other.blocked = [(c.endpoint, d.endpoint)]
        c.send(to: d.address)
        let start = other.clock.now()
        while d.delivered.isEmpty && other.clock.now() - start < 3 * ControlPlane.pathTryTime {
            other.advance(by: ControlPlane.tickInterval)
        }
        XCTAssertEqual(d.delivered.count, 1, "the packet crossed through the relay")
        XCTAssertNotNil(c.peer(relay.address)?.current, "c made a session with the relay")
        XCTAssertNotNil(d.peer(relay.address)?.current, "d made a session with the relay")
        XCTAssertEqual(d.peer(c.address)?.relay, relay.address)
    }

    func testWithoutARelayNothingCrosses() {
        let other = SimulatedNetwork()
        let c = other.addNode("10.99.0.1")
        let d = other.addNode("10.99.0.2")
        let plain = other.addNode("10.99.0.3")
        other.connectAll()
        other.blocked = [(c.endpoint, d.endpoint)]
        c.send(to: plain.address)
        d.send(to: plain.address)
        other.settle()
        c.send(to: d.address)
        other.advance(by: 4 * ControlPlane.pathTryTime)
        XCTAssertTrue(d.delivered.isEmpty, "no node offers itself as relay")
        XCTAssertNil(c.peer(d.address)?.relay)
    }

    private func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains { Array(haystack[$0..<$0 + needle.count]) == needle }
    }
}
