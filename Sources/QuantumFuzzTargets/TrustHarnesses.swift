import Crypto
import QuantumCore
@testable import QuantumCrypto

/// A fixed CA and node certificate, so a committed corpus stays valid for every later run
/// (Ed25519 signatures are deterministic).
enum FuzzTrust {
    static let authority = CertificateAuthority(
        signingKey: try! Curve25519.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: 0x43, count: 32)))
    static let address = IPv4Address(0x0A63_000B)
    /// Inside the certificates' validity.
    static let now: UInt64 = 1_800_000_000
    static let node = try! authority.issue(nodeKey: FuzzKeys.responder.publicKey, address: address, name: "fuzz-node",
                                           notBefore: 1_700_000_000, notAfter: 1_900_000_000)
}

/// A certificate as a mapping carries it (base64 of the binary encoding is decoded by the
/// caller; this feeds the bytes): parsed, then verified as a node certificate of the CA for
/// the responder's key and address, and as a CA certificate.
struct CertificateHarness: FuzzHarness {
    func seeds() -> [[UInt8]] {
        [FuzzTrust.node.encoded,
         try! FuzzTrust.authority.authorityCertificate(name: "fuzz-ca", notBefore: 1_700_000_000, notAfter: 1_900_000_000).encoded]
    }

    func run(_ input: UnsafeRawBufferPointer) {
        guard let certificate = try? Certificate.decode(Array(input)) else { return }
        _ = try? certificate.verifyNode(issuer: FuzzTrust.authority.publicKey, publicKey: FuzzKeys.responder.publicKey,
                                        address: FuzzTrust.address, now: FuzzTrust.now)
        _ = try? certificate.verifyAuthority(now: FuzzTrust.now)
    }
}

/// A revocation list as etcd holds it: parsed, verified against the CA, and adopted by a
/// network trust that already holds serial 1.
struct RevocationListHarness: FuzzHarness {
    func seeds() -> [[UInt8]] {
        [try! FuzzTrust.authority.revocationList(serial: 2, issuedAt: 1_800_000_000, revoked: [FuzzKeys.initiator.publicKey]).encoded,
         try! FuzzTrust.authority.revocationList(serial: 3, issuedAt: 1_800_000_001, revoked: []).encoded]
    }

    func run(_ input: UnsafeRawBufferPointer) {
        guard let list = try? RevocationList.decode(Array(input)) else { return }
        _ = try? list.verify(issuer: FuzzTrust.authority.publicKey)
        let authorityCertificate = try! FuzzTrust.authority.authorityCertificate(
            name: "fuzz-ca", notBefore: 1_700_000_000, notAfter: 1_900_000_000)
        var trust = NetworkTrust(authority: authorityCertificate)
        _ = try? trust.adopt(try! FuzzTrust.authority.revocationList(serial: 1, issuedAt: 1_700_000_000, revoked: []))
        _ = try? trust.adopt(list)
        _ = trust.isRevoked(FuzzKeys.initiator.publicKey)
    }
}

/// A cookie reply as the control thread receives it: its receiver index, then the cookie
/// opened with the replier's key, bound to the mac1 of the initiation it answers.
struct CookieReplyHarness: FuzzHarness {
    private let mac1 = CookieReply.mac1(of: FuzzKeys.initiation().message)

    func seeds() -> [[UInt8]] {
        let responder = try! CookieResponder(localPublicKey: FuzzKeys.responder.publicKey,
                                             masterSecret: [UInt8](repeating: 0x53, count: CookieResponder.masterSecretSize))
        let source: [UInt8] = [192, 0, 2, 1, 0x04, 0x4B]
        var reply = [UInt8](repeating: 0, count: WireFormat.cookieReplySize)
        let initiation = FuzzKeys.initiation().message
        let written = initiation.withUnsafeBytes { message in
            source.withUnsafeBytes { source in
                reply.withUnsafeMutableBytes { responder.writeReply(answering: message, source: source, now: 0, into: $0) }
            }
        }
        precondition(written, "the cookie reply seed was not written")
        return [reply]
    }

    func run(_ input: UnsafeRawBufferPointer) {
        guard CookieReply.receiverIndex(input) != nil else { return }
        _ = CookieReply.openCookie(input, replierPublicKey: FuzzKeys.responder.publicKey, mac1: mac1)
    }
}
