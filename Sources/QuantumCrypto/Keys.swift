import Crypto
import Foundation

/// Errors from building keys and cipher contexts (control plane only).
public enum CryptoError: Error, Equatable, CustomStringConvertible {
    /// A key had the wrong number of bytes.
    case invalidKeyLength(what: String, expected: Int, actual: Int)
    /// OpenSSL could not allocate or key an AES-256-GCM context.
    case cipherSetupFailed

    public var description: String {
        switch self {
        case let .invalidKeyLength(what, expected, actual):
            return "\(what) must be \(expected) bytes, got \(actual)"
        case .cipherSetupFailed:
            return "OpenSSL could not set up an AES-256-GCM context"
        }
    }
}

/// A node's long-term Curve25519 identity: the static key pair of the Noise handshake.
public struct StaticKeyPair: Sendable {
    /// Size of a Curve25519 private or public key in bytes.
    public static let keySize = 32

    /// The raw 32-byte X25519 private key (unclamped, as stored in the identity file).
    public let privateKey: [UInt8]
    /// The raw 32-byte X25519 public key, as published in the node's mapping.
    public let publicKey: [UInt8]
    /// The same private key in swift-crypto's form, kept so each DH doesn't re-parse it.
    let agreementKey: Curve25519.KeyAgreement.PrivateKey

    /// Generates a fresh random key pair.
    public static func generate() -> StaticKeyPair {
        StaticKeyPair(agreementKey: Curve25519.KeyAgreement.PrivateKey())
    }

    /// Rebuilds a key pair from its private key, deriving the public key.
    /// - Throws: `CryptoError.invalidKeyLength` unless `privateKey` has 32 bytes.
    public init(privateKey: [UInt8]) throws(CryptoError) {
        guard privateKey.count == Self.keySize else {
            throw .invalidKeyLength(what: "Curve25519 private key", expected: Self.keySize, actual: privateKey.count)
        }
        do {
            self.init(agreementKey: try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateKey))
        } catch {
            throw .invalidKeyLength(what: "Curve25519 private key", expected: Self.keySize, actual: privateKey.count)
        }
    }

    init(agreementKey: Curve25519.KeyAgreement.PrivateKey) {
        self.agreementKey = agreementKey
        self.privateKey = Array(agreementKey.rawRepresentation)
        self.publicKey = Array(agreementKey.publicKey.rawRepresentation)
    }
}

/// Base64 text form of keys, as used in identity files and etcd mappings.
public enum KeyEncoding {
    /// Standard base64 (with padding) of `key`.
    public static func base64(_ key: [UInt8]) -> String {
        Data(key).base64EncodedString()
    }

    /// Decodes base64 text into a 32-byte key.
    /// - Throws: `CryptoError.invalidKeyLength` if the text is not base64 of exactly 32 bytes.
    public static func decode(_ text: String) throws(CryptoError) -> [UInt8] {
        let bytes = Data(base64Encoded: text).map { Array($0) } ?? []
        guard bytes.count == StaticKeyPair.keySize else {
            throw .invalidKeyLength(what: "base64 key", expected: StaticKeyPair.keySize, actual: bytes.count)
        }
        return bytes
    }
}
