import Foundation

/// The CA's list of revoked node keys, published in etcd at `<prefix>/revocations`. Its
/// serial only grows: a node ignores a list whose serial is lower than one it has seen.
///
/// Encoding, version 1 (big-endian):
///
///     "QREV" | version 1 | issuer's Ed25519 key (32) | serial (8) | issuedAt (8, seconds since 1970)
///     | count (4) | count × revoked Curve25519 key (32, ascending, no duplicates)
///     | Ed25519 signature (64) over every byte before it
public struct RevocationList: Equatable, Sendable {
    static let magic: [UInt8] = Array("QREV".utf8)
    static let version: UInt8 = 1
    /// First line of a revocation list file.
    public static let fileHeader = "quantum revocation list v1"

    public let issuer: [UInt8]
    /// Grows with every list the CA issues.
    public let serial: UInt64
    public let issuedAt: UInt64
    /// The revoked node keys.
    public let revoked: Set<[UInt8]>
    /// The exact bytes, signature included.
    public let encoded: [UInt8]

    /// Parses a list; checks its layout but not its signature (see ``verify(issuer:)``).
    /// Never traps, whatever the bytes.
    public static func decode(_ bytes: [UInt8]) throws(TrustError) -> RevocationList {
        var reader = TrustReader(bytes)
        try reader.header(magic: magic, version: version, kind: "quantum revocation list")
        let issuer = try reader.take(32, "the issuer key")
        let serial = try reader.uint64("the serial")
        let issuedAt = try reader.uint64("issuedAt")
        let count = Int(try reader.uint32("the count"))
        // Checked before reading, so a hostile count cannot make us allocate.
        guard count <= (reader.remaining - TrustSignature.size) / 32 else { throw .truncated(what: "the revoked keys") }
        var keys: [[UInt8]] = []
        keys.reserveCapacity(count)
        for _ in 0..<count { keys.append(try reader.take(32, "the revoked keys")) }
        _ = try reader.signature()
        for (a, b) in zip(keys, keys.dropFirst()) where !a.lexicographicallyPrecedes(b) {
            throw .invalidField("the revoked keys are not in ascending order without duplicates")
        }
        return RevocationList(issuer: issuer, serial: serial, issuedAt: issuedAt, revoked: Set(keys), encoded: bytes)
    }

    static func sign(serial: UInt64, issuedAt: UInt64, revoked: Set<[UInt8]>, by authority: CertificateAuthority) -> RevocationList {
        var writer = TrustWriter()
        writer.append(magic)
        writer.append(version)
        writer.append(authority.publicKey)
        writer.append(serial)
        writer.append(issuedAt)
        writer.append(UInt32(revoked.count))
        for key in revoked.sorted(by: { $0.lexicographicallyPrecedes($1) }) { writer.append(key) }
        let body = writer.bytes
        return RevocationList(issuer: authority.publicKey, serial: serial, issuedAt: issuedAt, revoked: revoked,
                              encoded: body + TrustSignature.sign(body, with: authority.signingKey))
    }

    /// Checks that the trusted CA (`issuer`, its Ed25519 key) signed this list.
    public func verify(issuer trusted: [UInt8]) throws(TrustError) {
        guard issuer == trusted else { throw .otherIssuer }
        guard TrustSignature.verify(Array(encoded.suffix(TrustSignature.size)),
                                    over: Array(encoded.dropLast(TrustSignature.size)), by: issuer) else {
            throw .badSignature
        }
    }

    /// The list as a file: a header line, then base64.
    public var fileText: String { TrustText.encode(encoded, header: Self.fileHeader) }

    /// Parses a revocation list file.
    public static func decode(fileText: String) throws(TrustError) -> RevocationList {
        try decode(TrustText.decode(fileText, header: fileHeader))
    }
}
