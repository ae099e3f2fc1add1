import Crypto
import Foundation

/// Why a certificate, revocation list or CA key could not be read or is not acceptable;
/// the description says what was wrong in one line.
public enum TrustError: Error, Equatable, CustomStringConvertible {
    /// The bytes end before a field is complete.
    case truncated(what: String)
    /// Bytes follow the signature.
    case trailingBytes(count: Int)
    /// The leading magic is not the one of this kind of document.
    case wrongKind(expected: String)
    /// An encoding version this build does not read.
    case unsupportedVersion(UInt8)
    /// A field holds a value the format does not allow.
    case invalidField(String)
    /// The signature does not verify under the issuer's key.
    case badSignature
    /// Signed by another CA than the one trusted here.
    case otherIssuer
    /// Outside its validity period (times in seconds since 1970).
    case notValidNow(notBefore: UInt64, notAfter: UInt64, now: UInt64)
    /// A text file without the expected header line or with invalid base64.
    case badText(String)
    /// The key is on the CA's revocation list.
    case revoked
    /// A revocation list older than one already seen (a rollback).
    case staleRevocations(serial: UInt64, seen: UInt64)

    public var description: String {
        switch self {
        case .truncated(let what): return "truncated: it ends inside \(what)"
        case .trailingBytes(let count): return "\(count) unexpected byte\(count == 1 ? "" : "s") after the signature"
        case .wrongKind(let expected): return "not a \(expected)"
        case .unsupportedVersion(let version): return "encoding version \(version) is not supported"
        case .invalidField(let what): return what
        case .badSignature: return "the signature does not verify"
        case .otherIssuer: return "signed by another CA"
        case .notValidNow(let notBefore, let notAfter, let now):
            let state = now < notBefore ? "not valid yet" : "expired"
            return "\(state) (valid \(TrustTime.describe(notBefore)) to \(TrustTime.describe(notAfter)))"
        case .badText(let why): return why
        case .revoked: return "revoked by the CA"
        case .staleRevocations(let serial, let seen):
            return "revocation list serial \(serial) is older than serial \(seen) already seen (a rollback)"
        }
    }
}

/// Wall-clock times of certificates: whole seconds since 1970 (UTC).
public enum TrustTime {
    /// The current wall-clock time.
    public static func now() -> UInt64 {
        UInt64(max(0, Date().timeIntervalSince1970))
    }

    /// ISO 8601 text of a time, e.g. `2027-01-31T12:00:00Z`.
    public static func describe(_ seconds: UInt64) -> String {
        let clamped = min(seconds, 253_402_300_799)  // 9999-12-31T23:59:59Z
        return ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(clamped)))
    }
}

/// Appends the fixed-size, big-endian fields of the trust documents.
struct TrustWriter {
    private(set) var bytes: [UInt8] = []

    mutating func append(_ raw: [UInt8]) { bytes += raw }
    mutating func append(_ value: UInt8) { bytes.append(value) }
    mutating func append(_ value: UInt16) { bytes += withUnsafeBytes(of: value.bigEndian, Array.init) }
    mutating func append(_ value: UInt32) { bytes += withUnsafeBytes(of: value.bigEndian, Array.init) }
    mutating func append(_ value: UInt64) { bytes += withUnsafeBytes(of: value.bigEndian, Array.init) }
}

/// Reads the fields written by `TrustWriter`; every read checks the length first, so
/// hostile input ends in `TrustError.truncated`, never in a trap.
struct TrustReader {
    private let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func take(_ count: Int, _ what: String) throws(TrustError) -> [UInt8] {
        guard count >= 0, remaining >= count else { throw .truncated(what: what) }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func byte(_ what: String) throws(TrustError) -> UInt8 { try take(1, what)[0] }

    mutating func uint16(_ what: String) throws(TrustError) -> UInt16 {
        try take(2, what).reduce(0) { $0 << 8 | UInt16($1) }
    }

    mutating func uint32(_ what: String) throws(TrustError) -> UInt32 {
        try take(4, what).reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func uint64(_ what: String) throws(TrustError) -> UInt64 {
        try take(8, what).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Checks the magic and the version byte at the start of a document.
    mutating func header(magic: [UInt8], version: UInt8, kind: String) throws(TrustError) {
        guard try take(magic.count, "the header") == magic else { throw .wrongKind(expected: kind) }
        let found = try byte("the version")
        guard found == version else { throw .unsupportedVersion(found) }
    }

    /// Reads the signature, which must end the document.
    mutating func signature() throws(TrustError) -> [UInt8] {
        let signature = try take(TrustSignature.size, "the signature")
        guard remaining == 0 else { throw .trailingBytes(count: remaining) }
        return signature
    }
}

/// Ed25519 signatures over the exact encoded bytes of a document.
enum TrustSignature {
    static let size = 64

    static func sign(_ message: [UInt8], with key: Curve25519.Signing.PrivateKey) -> [UInt8] {
        // Signing with a valid key cannot fail.
        Array(try! key.signature(for: message))
    }

    static func verify(_ signature: [UInt8], over message: [UInt8], by publicKey: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: message)
    }
}

/// The text form of trust files: one header line naming the kind, then base64 (wrapped
/// at 64 columns). Etcd carries the bare base64.
public enum TrustText {
    /// `header` line, then the base64 of `bytes`, ending in a newline.
    public static func encode(_ bytes: [UInt8], header: String) -> String {
        let base64 = Data(bytes).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "\(header)\n\(base64)\n"
    }

    /// The bytes of a text file whose first line is `header`.
    public static func decode(_ text: String, header: String) throws(TrustError) -> [UInt8] {
        var lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard lines.first == header else { throw .badText("the first line is not '\(header)'") }
        lines.removeFirst()
        guard let bytes = Data(base64Encoded: lines.joined()) else { throw .badText("the body is not base64") }
        return Array(bytes)
    }

    /// The header line of a text file (its first line), if any.
    public static func header(of text: String) -> String? {
        text.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) }
    }
}
