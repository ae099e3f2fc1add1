import QuantumCore
import QuantumCrypto
import QuantumDatastore
import XCTest

@testable import QuantumNode

/// The control plane with a network CA, on the simulated network and its fake clock:
/// untrusted mappings are ignored, revocations and expiry cut peers off.
final class CertificateTrustTests: XCTestCase {
    private var network = SimulatedNetwork()
    private let ca = CertificateAuthority.generate()
    private var trust: NetworkTrust!

    override func setUp() {
        network = SimulatedNetwork()
        trust = NetworkTrust(authority: try! ca.authorityCertificate(name: "test CA", notBefore: 0, notAfter: 4_000_000_000))
    }

    /// The fake clock's wall time in seconds since 1970 (what certificates are checked against).
    private var wall: UInt64 { network.clock.timestamp().label - TAI64N.epochLabel }

    /// `node`'s mapping carrying a certificate of `authority` for its key at `address`.
    private func certified(_ node: SimulatedNode, address: IPv4Address? = nil, lifetime: UInt64 = 86_400,
                           by authority: CertificateAuthority? = nil) -> MappingUpdate {
        var mapping = node.mapping
        mapping.certificate = try! (authority ?? ca).issue(nodeKey: node.keyPair.publicKey, address: address ?? node.address,
                                                           name: "node", notBefore: wall - 10, notAfter: wall + lifetime).base64
        return MappingUpdate(address: node.address, mapping: mapping, createRevision: node.createRevision)
    }

    /// a (10.7.0.1) and b (10.7.0.2), both enforcing the CA, each knowing the other's certified
    /// mapping (b's valid for `lifetime`), with a session set up by one packet from a to b.
    private func connectedPair(lifetime: UInt64 = 86_400) -> (SimulatedNode, SimulatedNode) {
        let trust = self.trust
        let a = network.addNode("10.7.0.1") { $0.trust = trust }
        let b = network.addNode("10.7.0.2") { $0.trust = trust }
        network.apply([certified(b, lifetime: lifetime)], to: a)
        network.apply([certified(a)], to: b)
        a.send(to: b.address)
        network.settle()
        XCTAssertEqual(b.delivered.count, 1)
        return (a, b)
    }

    /// A mapping at `address` with a fresh key and b's endpoint moved elsewhere (a usurper).
    private func usurper(of node: SimulatedNode, certificate: String? = nil) -> MappingUpdate {
        var mapping = node.mapping
        mapping.publicKey = StaticKeyPair.generate().publicKey
        mapping.port = 50_000
        mapping.certificate = certificate
        return MappingUpdate(address: node.address, mapping: mapping, createRevision: network.newRevision())
    }

    func testStolenAddressIsIgnoredOnceAndTrafficKeepsGoingToTheGenuineNode() {
        let (a, b) = connectedPair()
        let stolen = usurper(of: b)
        network.apply([stolen], to: a)
        network.apply([stolen], to: a)
        // A usurper with a certificate of another CA for its own key and the address.
        let foreign = CertificateAuthority.generate()
        var forged = stolen
        forged.mapping!.certificate = try! foreign.issue(nodeKey: stolen.mapping!.publicKey, address: b.address, name: "x",
                                                          notBefore: wall - 10, notAfter: wall + 3600).base64
        network.apply([forged], to: a)
        XCTAssertEqual(a.peer(b.address)?.mapping.publicKey, b.keyPair.publicKey)
        XCTAssertEqual(a.peer(b.address)?.mapping.port, b.registeredPort)
        XCTAssertEqual(a.control.untrustedReported.count, 1, "one warning per address and key, not one per update")
        a.send(to: b.address)
        network.settle()
        XCTAssertEqual(b.delivered.count, 2, "traffic to the address still reaches the genuine node")
    }

    func testValidCertificateForAnotherAddressIsIgnored() {
        let trust = self.trust
        let a = network.addNode("10.7.0.1") { $0.trust = trust }
        let c = network.addNode("10.7.0.3")
        network.apply([certified(c, address: IPv4Address("10.7.0.9")!)], to: a)
        XCTAssertNil(a.peer(c.address))
        XCTAssertNil(a.table.routes[c.address])
        network.apply([certified(c)], to: a)
        XCTAssertNotNil(a.peer(c.address), "the same node with a certificate for its address is accepted")
    }

    func testRevocationCutsSessionsAndRefusesHandshakesAndRollbackIsIgnored() throws {
        let (a, b) = connectedPair()
        XCTAssertNotNil(a.peer(b.address)?.current)
        // Serial 2 revokes nobody; an older serial 1 revoking b is a rollback and changes nothing.
        a.control.setRevocations(try ca.revocationList(serial: 2, issuedAt: wall, revoked: []))
        network.advance(by: ControlPlane.tickInterval)
        a.control.setRevocations(try ca.revocationList(serial: 1, issuedAt: wall, revoked: [b.keyPair.publicKey]))
        network.advance(by: ControlPlane.tickInterval)
        XCTAssertNotNil(a.peer(b.address), "a rolled-back list must not revoke")
        // A list of another CA is ignored too.
        a.control.setRevocations(try CertificateAuthority.generate().revocationList(serial: 9, issuedAt: wall,
                                                                                     revoked: [b.keyPair.publicKey]))
        network.advance(by: ControlPlane.tickInterval)
        XCTAssertNotNil(a.peer(b.address))

        a.control.setRevocations(try ca.revocationList(serial: 3, issuedAt: wall, revoked: [b.keyPair.publicKey]))
        network.settle()  // one turn, no time passing
        XCTAssertNil(a.peer(b.address), "the revoked peer is cut off within one turn")
        XCTAssertNil(a.table.routes[b.address])
        XCTAssertTrue(a.table.inbound.isEmpty, "the revoked peer's sessions are torn down")
        // b still sends on its old session and then tries new handshakes: a takes none of it.
        let delivered = a.delivered.count
        let rejected = a.control.counters.value(.handshakesRejected)
        network.advance(by: seconds(40)) { b.send(to: a.address) }
        XCTAssertEqual(a.delivered.count, delivered)
        XCTAssertGreaterThan(a.control.counters.value(.handshakesRejected), rejected, "b's initiations reach a and are refused")
        XCTAssertNil(a.peer(b.address))
        // Its mapping, announced again, stays ignored.
        network.apply([certified(b)], to: a)
        XCTAssertNil(a.peer(b.address))
    }

    func testPeerIsCutOffWhenItsCertificateExpires() {
        let (a, b) = connectedPair(lifetime: 60)
        network.advance(by: seconds(55)) { a.send(to: b.address) }
        XCTAssertNotNil(a.peer(b.address))
        network.advance(by: seconds(10))
        XCTAssertNil(a.peer(b.address), "cut off at expiry")
        XCTAssertNil(a.table.routes[b.address])
        let delivered = b.delivered.count
        a.send(to: b.address)
        network.settle()
        XCTAssertEqual(b.delivered.count, delivered)
    }
}
