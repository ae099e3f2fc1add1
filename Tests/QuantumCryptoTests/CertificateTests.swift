import QuantumCore
import QuantumCrypto
import XCTest

final class CertificateTests: XCTestCase {
    let ca = CertificateAuthority.generate()
    let nodeKey = StaticKeyPair.generate().publicKey
    let address = IPv4Address("10.99.0.7")!
    let now: UInt64 = 1_800_000_000

    func issue(key: [UInt8]? = nil, at address: IPv4Address? = nil, by authority: CertificateAuthority? = nil,
               notBefore: UInt64? = nil, notAfter: UInt64? = nil) throws -> Certificate {
        try (authority ?? ca).issue(nodeKey: key ?? nodeKey, address: address ?? self.address, name: "node-7",
                                    notBefore: notBefore ?? now - 10, notAfter: notAfter ?? now + 3600)
    }

    func testNodeCertificateRoundTripsAndVerifies() throws {
        let certificate = try issue()
        let decoded = try Certificate.decode(certificate.encoded)
        XCTAssertEqual(decoded, certificate)
        XCTAssertEqual(decoded.name, "node-7")
        XCTAssertEqual(decoded.address, address)
        XCTAssertEqual(decoded.publicKey, nodeKey)
        XCTAssertEqual(try Certificate.decode(base64: certificate.base64), certificate)
        XCTAssertEqual(try Certificate.decode(fileText: certificate.fileText, kind: .node), certificate)
        XCTAssertNoThrow(try decoded.verifyNode(issuer: ca.publicKey, publicKey: nodeKey, address: address, now: now))
    }

    func testAuthorityCertificateIsSelfSigned() throws {
        let certificate = try ca.authorityCertificate(name: "test CA", notBefore: now, notAfter: now + 10)
        let decoded = try Certificate.decode(fileText: certificate.fileText, kind: .authority)
        XCTAssertNoThrow(try decoded.verifyAuthority(now: now))
        XCTAssertEqual(decoded.publicKey, ca.publicKey)
        XCTAssertThrowsError(try Certificate.decode(fileText: certificate.fileText, kind: .node))
    }

    func testAnyAlteredByteBreaksTheSignature() throws {
        let certificate = try issue()
        // Every byte after the magic and the version: the fields, the issuer and the signature.
        for offset in 5..<certificate.encoded.count {
            var bytes = certificate.encoded
            bytes[offset] ^= 0x01
            guard let altered = try? Certificate.decode(bytes) else { continue }  // a field became invalid
            XCTAssertThrowsError(try altered.verifyNode(issuer: ca.publicKey, publicKey: altered.publicKey,
                                                        address: altered.address, now: now),
                                 "byte \(offset) altered and still verifies")
        }
    }

    func testOtherCAExpiredWrongKeyAndWrongAddressAreRefused() throws {
        let other = CertificateAuthority.generate()
        XCTAssertThrowsError(try issue(by: other).verifyNode(issuer: ca.publicKey, publicKey: nodeKey, address: address, now: now)) {
            XCTAssertEqual($0 as? TrustError, .otherIssuer)
        }
        let certificate = try issue(notAfter: now + 60)
        XCTAssertThrowsError(try certificate.verifyNode(issuer: ca.publicKey, publicKey: nodeKey, address: address, now: now + 61)) {
            XCTAssertEqual($0 as? TrustError, .notValidNow(notBefore: now - 10, notAfter: now + 60, now: now + 61))
        }
        XCTAssertThrowsError(try certificate.verifyNode(issuer: ca.publicKey, publicKey: nodeKey, address: address, now: now - 11))
        XCTAssertThrowsError(try certificate.verifyNode(issuer: ca.publicKey, publicKey: StaticKeyPair.generate().publicKey,
                                                        address: address, now: now))
        XCTAssertThrowsError(try certificate.verifyNode(issuer: ca.publicKey, publicKey: nodeKey,
                                                        address: IPv4Address("10.99.0.8")!, now: now))
    }

    func testTruncatedAndTrailingBytesAreRefusedWithoutTrapping() throws {
        let certificate = try issue()
        for length in 0..<certificate.encoded.count {
            XCTAssertThrowsError(try Certificate.decode(Array(certificate.encoded.prefix(length))), "length \(length)")
        }
        XCTAssertThrowsError(try Certificate.decode(certificate.encoded + [0])) {
            XCTAssertEqual($0 as? TrustError, .trailingBytes(count: 1))
        }
        var wrongVersion = certificate.encoded
        wrongVersion[4] = 9
        XCTAssertThrowsError(try Certificate.decode(wrongVersion)) { XCTAssertEqual($0 as? TrustError, .unsupportedVersion(9)) }
        XCTAssertThrowsError(try Certificate.decode(base64: "%%%"))
    }

    func testRevocationListRoundTripsVerifiesAndRefusesHostileBytes() throws {
        let revoked: Set<[UInt8]> = [nodeKey, StaticKeyPair.generate().publicKey]
        let list = try ca.revocationList(serial: 3, issuedAt: now, revoked: revoked)
        let decoded = try RevocationList.decode(list.encoded)
        XCTAssertEqual(decoded, list)
        XCTAssertEqual(decoded.revoked, revoked)
        XCTAssertEqual(try RevocationList.decode(fileText: list.fileText), list)
        XCTAssertNoThrow(try decoded.verify(issuer: ca.publicKey))
        XCTAssertThrowsError(try decoded.verify(issuer: CertificateAuthority.generate().publicKey))
        var forged = list.encoded
        forged[4 + 1 + 32 + 7] ^= 1  // the serial's last byte
        XCTAssertThrowsError(try RevocationList.decode(forged).verify(issuer: ca.publicKey)) {
            XCTAssertEqual($0 as? TrustError, .badSignature)
        }
        for length in 0..<list.encoded.count {
            XCTAssertThrowsError(try RevocationList.decode(Array(list.encoded.prefix(length))), "length \(length)")
        }
        XCTAssertThrowsError(try RevocationList.decode(list.encoded + [1, 2]))
        var hugeCount = list.encoded
        hugeCount.replaceSubrange(53..<57, with: [0xff, 0xff, 0xff, 0xff])
        XCTAssertThrowsError(try RevocationList.decode(hugeCount)) {
            XCTAssertEqual($0 as? TrustError, .truncated(what: "the revoked keys"))
        }
    }

    func testNetworkTrustChecksMappingsAndRefusesRollback() throws {
        let authority = try ca.authorityCertificate(name: "ca", notBefore: now, notAfter: now + 100)
        var trust = NetworkTrust(authority: authority)
        var mapping = Mapping(machineID: String(repeating: "a", count: 32), privateIP: address,
                              ipv4: IPv4Address("192.0.2.1"), ipv6: nil, port: 1099, publicKey: nodeKey)
        XCTAssertThrowsError(try trust.check(mapping, now: now))
        mapping.certificate = try issue().base64
        XCTAssertEqual(try trust.check(mapping, now: now).address, address)
        XCTAssertTrue(try trust.adopt(ca.revocationList(serial: 2, issuedAt: now, revoked: [nodeKey])))
        XCTAssertThrowsError(try trust.check(mapping, now: now)) { XCTAssertEqual($0 as? TrustError, .revoked) }
        XCTAssertFalse(try trust.adopt(XCTUnwrap(trust.revocations)))
        XCTAssertThrowsError(try trust.adopt(ca.revocationList(serial: 1, issuedAt: now, revoked: []))) {
            XCTAssertEqual($0 as? TrustError, .staleRevocations(serial: 1, seen: 2))
        }
        XCTAssertThrowsError(try trust.adopt(CertificateAuthority.generate().revocationList(serial: 9, issuedAt: now, revoked: [])))
        XCTAssertEqual(trust.revocations?.serial, 2)
        XCTAssertTrue(trust.isRevoked(nodeKey))
    }
}
