import Foundation
import QuantumCore
import QuantumCrypto

/// A network CA's directory, kept off the network: `ca.key` (the Ed25519 private key, 0600),
/// `ca.crt` (its self-signed certificate, for `--network-ca-cert`) and `revocations.list`
/// (the newest revocation list, whose serial the next one continues).
struct CADirectory {
    /// A failure of a `quantum ca` command, in one line naming the file or value.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let keyFile = "ca.key"
    static let certificateFile = "ca.crt"
    static let revocationsFile = "revocations.list"
    /// Largest trust file read (a revocation list of ~20,000 keys).
    static let fileLimit = 1 << 20

    let path: String
    var keyPath: String { "\(path)/\(Self.keyFile)" }
    var certificatePath: String { "\(path)/\(Self.certificateFile)" }
    var revocationsPath: String { "\(path)/\(Self.revocationsFile)" }

    /// Creates the CA: a fresh key and a self-signed certificate valid from `now` for
    /// `validFor` seconds. Refuses to overwrite an existing CA.
    func initialize(name: String, validFor: UInt64, now: UInt64) throws -> Certificate {
        for existing in [keyPath, certificatePath] where FileManager.default.fileExists(atPath: existing) {
            throw Failure(description: "\(existing) already exists; refusing to overwrite a CA")
        }
        let authority = CertificateAuthority.generate()
        let certificate: Certificate
        do {
            certificate = try authority.authorityCertificate(name: name, notBefore: now, notAfter: now &+ validFor)
        } catch {
            throw Failure(description: "--name '\(name)': \(error)")
        }
        do {
            try FileSystem.makeDirectory(path, mode: 0o700)
            try FileSystem.writeAtomically(Array(authority.keyFileText.utf8), to: keyPath, mode: 0o600)
            try FileSystem.writeAtomically(Array(certificate.fileText.utf8), to: certificatePath, mode: 0o644)
        } catch {
            throw Failure(description: "\(path): \(error)")
        }
        return certificate
    }

    /// The CA's key; it must belong to this user and be closed to group and others
    /// (the same check as a node's private key, `Identity.checkSecretFile`).
    func authority() throws -> CertificateAuthority {
        let exists: Bool
        do {
            exists = try FileSystem.status(keyPath) != nil
        } catch {
            throw Failure(description: "\(keyPath): \(error)")
        }
        guard exists else { throw Failure(description: "\(keyPath) does not exist; create the CA with quantum ca init") }
        try Identity.checkSecretFile(keyPath)
        let text = try Self.readText(keyPath)
        do {
            return try CertificateAuthority(keyFileText: text)
        } catch {
            throw Failure(description: "\(keyPath): \(error)")
        }
    }

    /// Signs a certificate for the node with Curve25519 key `publicKey` (base64) at `address`.
    func sign(publicKey: String, address: IPv4Address, name: String, validFor: UInt64, now: UInt64) throws -> Certificate {
        let key: [UInt8]
        do {
            key = try KeyEncoding.decode(publicKey)
        } catch {
            throw Failure(description: "--public-key: \(error)")
        }
        do {
            return try authority().issue(nodeKey: key, address: address, name: name, notBefore: now, notAfter: now &+ validFor)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "\(error)")
        }
    }

    /// Adds `target` (a base64 public key, or a node certificate file) to the CA's revocation
    /// list and signs it again with the next serial.
    func revoke(_ target: String, now: UInt64) throws -> (list: RevocationList, key: [UInt8]) {
        let authority = try authority()
        let key: [UInt8]
        if let decoded = try? KeyEncoding.decode(target) {
            key = decoded
        } else {
            let text: String
            do {
                text = try Self.readText(target)
            } catch {
                throw Failure(description: "'\(target)' is neither a base64 public key nor a readable certificate file")
            }
            do {
                key = try Certificate.decode(fileText: text, kind: .node).publicKey
            } catch {
                throw Failure(description: "\(target): \(error)")
            }
        }
        let previous = try currentRevocations(issuer: authority.publicKey)
        let list: RevocationList
        do {
            list = try authority.revocationList(serial: (previous?.serial ?? 0) + 1, issuedAt: now,
                                                revoked: (previous?.revoked ?? []).union([key]))
        } catch {
            throw Failure(description: "\(error)")
        }
        try Self.write(list.fileText, to: revocationsPath, mode: 0o644)
        return (list, key)
    }

    /// The CA's newest revocation list, nil before the first revocation.
    private func currentRevocations(issuer: [UInt8]) throws -> RevocationList? {
        guard FileManager.default.fileExists(atPath: revocationsPath) else { return nil }
        do {
            let list = try RevocationList.decode(fileText: Self.readText(revocationsPath))
            try list.verify(issuer: issuer)
            return list
        } catch {
            throw Failure(description: "\(revocationsPath): \(error)")
        }
    }

    static func readText(_ path: String) throws -> String {
        let bytes: [UInt8]?
        do {
            bytes = try FileSystem.read(path, limit: fileLimit)
        } catch {
            throw Failure(description: "\(path): \(error)")
        }
        guard let bytes else { throw Failure(description: "\(path) does not exist") }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw Failure(description: "\(path) is not text") }
        return text
    }

    static func write(_ text: String, to path: String, mode: mode_t) throws {
        do {
            try FileSystem.writeAtomically(Array(text.utf8), to: path, mode: mode)
        } catch {
            throw Failure(description: "\(path): \(error)")
        }
    }

    /// A human-readable description of a CA certificate, node certificate, revocation list
    /// or CA key file (of the key, only its public half).
    static func describe(fileText text: String, now: UInt64) throws -> String {
        switch TrustText.header(of: text) {
        case Certificate.nodeFileHeader?, Certificate.authorityFileHeader?:
            let kind: Certificate.Kind = TrustText.header(of: text) == Certificate.nodeFileHeader ? .node : .authority
            let certificate = try Certificate.decode(fileText: text, kind: kind)
            let validity: String
            do {
                if kind == .authority { try certificate.verifyAuthority(now: now) }
                validity = kind == .authority ? "self-signature verifies; valid now" : "signature not checked here (see quantum ca show of the CA)"
            } catch {
                validity = "\(error)"
            }
            var lines = [
                kind == .node ? "node certificate" : "CA certificate",
                "  name:       \(certificate.name)",
            ]
            if kind == .node {
                lines.append("  address:    \(certificate.address)")
                lines.append("  public key: \(KeyEncoding.base64(certificate.publicKey)) (Curve25519)")
            } else {
                lines.append("  CA key:     \(KeyEncoding.base64(certificate.publicKey)) (Ed25519)")
            }
            lines += [
                "  not before: \(TrustTime.describe(certificate.notBefore))",
                "  not after:  \(TrustTime.describe(certificate.notAfter))\(certificate.notAfter < now ? " (expired)" : "")",
                "  issuer:     \(KeyEncoding.base64(certificate.issuer))",
                "  check:      \(validity)",
            ]
            return lines.joined(separator: "\n")
        case RevocationList.fileHeader?:
            let list = try RevocationList.decode(fileText: text)
            var lines = [
                "revocation list",
                "  serial:     \(list.serial)",
                "  issued:     \(TrustTime.describe(list.issuedAt))",
                "  issuer:     \(KeyEncoding.base64(list.issuer))",
                "  revoked:    \(list.revoked.count) key\(list.revoked.count == 1 ? "" : "s")",
            ]
            lines += list.revoked.map { KeyEncoding.base64($0) }.sorted().map { "    \($0)" }
            return lines.joined(separator: "\n")
        case CertificateAuthority.keyFileHeader?:
            let authority = try CertificateAuthority(keyFileText: text)
            return "CA private key (not shown)\n  CA key:     \(KeyEncoding.base64(authority.publicKey)) (Ed25519)"
        default:
            throw Failure(description: "not a quantum certificate, revocation list or CA key (unknown first line)")
        }
    }
}
