import Crypto
import Foundation
import QuantumCore

/// The network CA: an Ed25519 key kept off the network, which signs node certificates and
/// revocation lists. Its private key file is a header line and the base64 of the raw 32 bytes.
public struct CertificateAuthority: Sendable {
    /// First line of the CA private key file.
    public static let keyFileHeader = "quantum CA private key v1"

    let signingKey: Curve25519.Signing.PrivateKey
    /// The CA's Ed25519 public key (the issuer of everything it signs).
    public var publicKey: [UInt8] { Array(signingKey.publicKey.rawRepresentation) }

    /// A new CA with a fresh random key.
    public static func generate() -> CertificateAuthority {
        CertificateAuthority(signingKey: Curve25519.Signing.PrivateKey())
    }

    /// Reads a CA private key file's text.
    public init(keyFileText: String) throws(TrustError) {
        let raw = try TrustText.decode(keyFileText, header: Self.keyFileHeader)
        guard raw.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
            throw .invalidField("the CA private key is not 32 bytes")
        }
        signingKey = key
    }

    init(signingKey: Curve25519.Signing.PrivateKey) {
        self.signingKey = signingKey
    }

    /// The private key file's text (keep it mode 0600, off the network).
    public var keyFileText: String {
        TrustText.encode(Array(signingKey.rawRepresentation), header: Self.keyFileHeader)
    }

    /// The CA's self-signed certificate.
    public func authorityCertificate(name: String, notBefore: UInt64, notAfter: UInt64) throws(TrustError) -> Certificate {
        try Self.checkName(name)
        return Certificate.sign(kind: .authority, publicKey: publicKey, address: IPv4Address(0), name: name,
                                notBefore: notBefore, notAfter: notAfter, by: self)
    }

    /// A certificate for the node holding the Curve25519 `nodeKey` at `address`.
    public func issue(nodeKey: [UInt8], address: IPv4Address, name: String,
                      notBefore: UInt64, notAfter: UInt64) throws(TrustError) -> Certificate {
        guard nodeKey.count == 32 else { throw .invalidField("a node public key has 32 bytes, not \(nodeKey.count)") }
        guard address.value != 0 else { throw .invalidField("0.0.0.0 is not a node address") }
        guard notBefore <= notAfter else { throw .invalidField("the validity ends before it starts") }
        try Self.checkName(name)
        return Certificate.sign(kind: .node, publicKey: nodeKey, address: address, name: name,
                                notBefore: notBefore, notAfter: notAfter, by: self)
    }

    /// A revocation list with `serial` listing `revoked` node keys.
    public func revocationList(serial: UInt64, issuedAt: UInt64, revoked: Set<[UInt8]>) throws(TrustError) -> RevocationList {
        guard revoked.allSatisfy({ $0.count == 32 }) else { throw .invalidField("a revoked key has 32 bytes") }
        return RevocationList.sign(serial: serial, issuedAt: issuedAt, revoked: revoked, by: self)
    }

    private static func checkName(_ name: String) throws(TrustError) {
        guard (1...Certificate.maximumNameLength).contains(name.utf8.count), !name.contains(where: \.isNewline) else {
            throw .invalidField("a name has 1 to \(Certificate.maximumNameLength) bytes of UTF-8 on one line")
        }
    }
}
