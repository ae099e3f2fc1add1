import Foundation
import QuantumCore

/// A certificate of the network CA (DESIGN.md §4 "Trust"): either the CA's own, self-signed
/// (`kind == .authority`, binding its Ed25519 key to a name), or a node certificate binding
/// a node's Curve25519 public key to its private IP and a name, signed by the CA.
///
/// Encoding, version 1 (all integers big-endian, times in seconds since 1970 UTC):
///
///     "QCRT" | version 1 | kind (1 CA, 2 node) | public key (32) | address (4; 0 for a CA)
///     | notBefore (8) | notAfter (8) | name length (1, 1…64) | name (UTF-8)
///     | issuer's Ed25519 key (32) | Ed25519 signature (64) over every byte before it
///
/// `encoded` keeps the exact bytes, so the signature is always checked over what was received.
public struct Certificate: Equatable, Sendable {
    /// What a certificate certifies.
    public enum Kind: UInt8, Sendable {
        /// The CA itself (self-signed).
        case authority = 1
        /// A node: its Curve25519 key and private address.
        case node = 2
    }

    static let magic: [UInt8] = Array("QCRT".utf8)
    static let version: UInt8 = 1
    /// Longest name, in bytes of UTF-8.
    public static let maximumNameLength = 64
    /// First line of a node certificate file.
    public static let nodeFileHeader = "quantum node certificate v1"
    /// First line of a CA certificate file.
    public static let authorityFileHeader = "quantum CA certificate v1"

    public let kind: Kind
    /// The certified key: the node's Curve25519 key, or the CA's Ed25519 key.
    public let publicKey: [UInt8]
    /// The node's private address (0.0.0.0 for a CA).
    public let address: IPv4Address
    public let name: String
    /// First second of validity.
    public let notBefore: UInt64
    /// Last second of validity.
    public let notAfter: UInt64
    /// The Ed25519 public key of the CA that signed it.
    public let issuer: [UInt8]
    /// The exact bytes, signature included.
    public let encoded: [UInt8]

    /// Parses a certificate; checks its layout and field values but not its signature
    /// (see ``verify(issuer:now:)``). Never traps, whatever the bytes.
    public static func decode(_ bytes: [UInt8]) throws(TrustError) -> Certificate {
        var reader = TrustReader(bytes)
        try reader.header(magic: magic, version: version, kind: "quantum certificate")
        guard let kind = Kind(rawValue: try reader.byte("the kind")) else { throw .invalidField("unknown certificate kind") }
        let publicKey = try reader.take(32, "the public key")
        let address = IPv4Address(try reader.uint32("the address"))
        let notBefore = try reader.uint64("notBefore")
        let notAfter = try reader.uint64("notAfter")
        let nameLength = Int(try reader.byte("the name length"))
        let nameBytes = try reader.take(nameLength, "the name")
        let issuer = try reader.take(32, "the issuer key")
        _ = try reader.signature()
        guard let name = String(validating: nameBytes, as: UTF8.self), (1...maximumNameLength).contains(nameLength),
              !name.contains(where: \.isNewline) else {
            throw .invalidField("the name is not 1 to \(maximumNameLength) bytes of single-line UTF-8")
        }
        guard notBefore <= notAfter else { throw .invalidField("notBefore is after notAfter") }
        guard (kind == .authority) == (address.value == 0) else {
            throw .invalidField(kind == .authority ? "a CA certificate names an address" : "a node certificate names no address")
        }
        guard kind == .node || issuer == publicKey else { throw .invalidField("a CA certificate is not self-signed") }
        return Certificate(kind: kind, publicKey: publicKey, address: address, name: name,
                           notBefore: notBefore, notAfter: notAfter, issuer: issuer, encoded: bytes)
    }

    /// Encodes and signs a certificate (used by ``CertificateAuthority``).
    static func sign(kind: Kind, publicKey: [UInt8], address: IPv4Address, name: String,
                     notBefore: UInt64, notAfter: UInt64, by authority: CertificateAuthority) -> Certificate {
        var writer = TrustWriter()
        writer.append(magic)
        writer.append(version)
        writer.append(kind.rawValue)
        writer.append(publicKey)
        writer.append(address.value)
        writer.append(notBefore)
        writer.append(notAfter)
        writer.append(UInt8(name.utf8.count))
        writer.append(Array(name.utf8))
        writer.append(authority.publicKey)
        let body = writer.bytes
        return Certificate(kind: kind, publicKey: publicKey, address: address, name: name, notBefore: notBefore,
                           notAfter: notAfter, issuer: authority.publicKey,
                           encoded: body + TrustSignature.sign(body, with: authority.signingKey))
    }

    /// Checks that `issuer` (the trusted CA's Ed25519 key) signed this certificate and that it
    /// is valid at `now` (seconds since 1970).
    public func verify(issuer trusted: [UInt8], now: UInt64) throws(TrustError) {
        guard issuer == trusted else { throw .otherIssuer }
        let body = Array(encoded.dropLast(TrustSignature.size))
        guard TrustSignature.verify(Array(encoded.suffix(TrustSignature.size)), over: body, by: issuer) else {
            throw .badSignature
        }
        guard notBefore <= now, now <= notAfter else { throw .notValidNow(notBefore: notBefore, notAfter: notAfter, now: now) }
    }

    /// The certificate as carried in a mapping: base64 of `encoded`.
    public var base64: String { Data(encoded).base64EncodedString() }

    /// Parses the base64 form carried in a mapping.
    public static func decode(base64: String) throws(TrustError) -> Certificate {
        guard let bytes = Data(base64Encoded: base64) else { throw .badText("the certificate is not base64") }
        return try decode(Array(bytes))
    }

    /// The certificate as a file: a header line naming its kind, then base64.
    public var fileText: String {
        TrustText.encode(encoded, header: kind == .node ? Self.nodeFileHeader : Self.authorityFileHeader)
    }

    /// Parses a certificate file of the given kind.
    public static func decode(fileText: String, kind: Kind) throws(TrustError) -> Certificate {
        let certificate = try decode(TrustText.decode(fileText, header: kind == .node ? nodeFileHeader : authorityFileHeader))
        guard certificate.kind == kind else { throw .wrongKind(expected: kind == .node ? "node certificate" : "CA certificate") }
        return certificate
    }

    /// A CA certificate's own check: self-signed, and valid at `now`.
    public func verifyAuthority(now: UInt64) throws(TrustError) {
        guard kind == .authority else { throw .wrongKind(expected: "CA certificate") }
        try verify(issuer: publicKey, now: now)
    }

    /// A node certificate's check for the holder of `publicKey` at `address`: issued by
    /// `issuer`, valid at `now`, and for exactly that key and address.
    public func verifyNode(issuer trusted: [UInt8], publicKey key: [UInt8], address claimed: IPv4Address,
                           now: UInt64) throws(TrustError) {
        guard kind == .node else { throw .wrongKind(expected: "node certificate") }
        try verify(issuer: trusted, now: now)
        guard publicKey == key else { throw .invalidField("it certifies another public key") }
        guard address == claimed else { throw .invalidField("it certifies address \(address), not \(claimed)") }
    }
}
