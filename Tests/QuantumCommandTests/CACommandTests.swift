import ArgumentParser
import Foundation
import Logging
import QuantumCore
import QuantumCrypto
import XCTest

@testable import QuantumCommand

/// `quantum ca …` and `quantum pubkey` in a temporary directory, and the daemon's start-up
/// checks of `--network-ca-cert` / `--node-cert`.
final class CACommandTests: XCTestCase {
    private var root = ""
    private var caDir: String { root + "/ca" }

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "quantum-ca-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
        super.tearDown()
    }

    /// Parses and runs a command line as `quantum` would.
    private func run(_ arguments: [String]) async throws {
        var command = try XCTUnwrap(try QuantumCommandLine.parseAsRoot(arguments) as? AsyncParsableCommand)
        try await command.run()
    }

    private func mode(_ path: String) throws -> Int {
        try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    private func text(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    /// Creates a CA and a node identity, and signs the node at `address`; returns the node's
    /// data directory, public key and certificate path.
    private func certifiedNode(address: String = "10.99.0.7", validFor: String = "365d") async throws
        -> (dataDir: String, publicKey: String, certificate: String) {
        try await run(["ca", "init", "--dir", caDir, "--name", "test CA"])
        let dataDir = root + "/node"
        try await run(["pubkey", "--data-dir", dataDir])
        let identity = try Identity.loadOrCreate(dataDir: dataDir, makePrivateKey: { XCTFail("created twice"); return [] })
        let publicKey = KeyEncoding.base64(try StaticKeyPair(privateKey: identity.privateKey).publicKey)
        let certificate = root + "/node.crt"
        try await run(["ca", "sign", "--dir", caDir, "--public-key", publicKey, "--ip", address, "--name", "node-7",
                       "--valid-for", validFor, "--out", certificate])
        return (dataDir, publicKey, certificate)
    }

    func testInitWritesAPrivateKeyAndACertificateAndNeverOverwrites() async throws {
        try await run(["ca", "init", "--dir", caDir])
        XCTAssertEqual(try mode(caDir + "/ca.key"), 0o600)
        XCTAssertEqual(try mode(caDir), 0o700)
        let key = try text(caDir + "/ca.key")
        let certificate = try Certificate.decode(fileText: text(caDir + "/ca.crt"), kind: .authority)
        XCTAssertNoThrow(try certificate.verifyAuthority(now: TrustTime.now()))
        XCTAssertEqual(certificate.publicKey, try CertificateAuthority(keyFileText: key).publicKey)
        do {
            try await run(["ca", "init", "--dir", caDir])
            XCTFail("an existing CA must not be overwritten")
        } catch {
            XCTAssertEqual(error as? ExitCode, .failure)
        }
        XCTAssertEqual(try text(caDir + "/ca.key"), key)
    }

    func testSignedCertificateBindsThePubkeyOfTheDataDirectoryToTheAddress() async throws {
        let node = try await certifiedNode()
        let ca = try Certificate.decode(fileText: text(caDir + "/ca.crt"), kind: .authority)
        let certificate = try Certificate.decode(fileText: text(node.certificate), kind: .node)
        XCTAssertNoThrow(try certificate.verifyNode(issuer: ca.publicKey, publicKey: KeyEncoding.decode(node.publicKey),
                                                    address: IPv4Address("10.99.0.7")!, now: TrustTime.now()))
        XCTAssertEqual(certificate.notAfter - certificate.notBefore, 365 * 86_400)
        let shown = try CADirectory.describe(fileText: text(node.certificate), now: TrustTime.now())
        XCTAssertTrue(shown.contains("10.99.0.7") && shown.contains(node.publicKey) && shown.contains("node-7"), shown)
        let shownKey = try CADirectory.describe(fileText: text(caDir + "/ca.key"), now: TrustTime.now())
        XCTAssertFalse(shownKey.contains(try text(caDir + "/ca.key").split(separator: "\n")[1]), "the private key is never shown")
        do {
            try await run(["ca", "sign", "--dir", caDir, "--public-key", "short", "--ip", "10.99.0.8", "--name", "x", "--out", root + "/x"])
            XCTFail("a bad key is refused")
        } catch {
            XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/x"))
        }
    }

    func testRevokeGrowsTheSerialAndKeepsEarlierKeys() async throws {
        let node = try await certifiedNode()
        let list = root + "/revocations"
        try await run(["ca", "revoke", "--dir", caDir, node.certificate, "--out", list])
        let other = KeyEncoding.base64(StaticKeyPair.generate().publicKey)
        try await run(["ca", "revoke", "--dir", caDir, other, "--out", list])
        let revocations = try RevocationList.decode(fileText: text(list))
        XCTAssertEqual(revocations.serial, 2)
        XCTAssertEqual(revocations.revoked, [try KeyEncoding.decode(node.publicKey), try KeyEncoding.decode(other)])
        let ca = try Certificate.decode(fileText: text(caDir + "/ca.crt"), kind: .authority)
        XCTAssertNoThrow(try revocations.verify(issuer: ca.publicKey))
        XCTAssertTrue(try CADirectory.describe(fileText: text(list), now: TrustTime.now()).contains("serial:     2"))
    }

    func testKeyReadableByOthersIsRefused() async throws {
        try await run(["ca", "init", "--dir", caDir])
        chmod(caDir + "/ca.key", 0o644)
        XCTAssertThrowsError(try CADirectory(path: caDir).authority()) {
            XCTAssertTrue("\($0)".contains("group or others can reach the private key"), "\($0)")
        }
    }

    // MARK: Start-up checks

    private func configuration(_ values: [String: String]) throws -> Configuration {
        try Configuration.resolve(commandLine: values, environment: [:])
    }

    func testCertificatesAreNeededTogether() {
        XCTAssertThrowsError(try configuration(["network-ca-cert": "/x"])) { XCTAssertTrue("\($0)".contains("--node-cert")) }
        XCTAssertThrowsError(try configuration(["node-cert": "/x"])) { XCTAssertTrue("\($0)".contains("--network-ca-cert")) }
    }

    func testStartRefusesAMismatchedExpiredOrForeignCertificate() async throws {
        let node = try await certifiedNode()
        let publicKey = try KeyEncoding.decode(node.publicKey)
        let values = ["network-ca-cert": caDir + "/ca.crt", "node-cert": node.certificate, "data-dir": node.dataDir]
        let trust = try XCTUnwrap(try Daemon.loadTrust(configuration(values), publicKey: publicKey))
        XCTAssertEqual(trust.certificate.address, IPv4Address("10.99.0.7"))
        XCTAssertNil(try Daemon.loadTrust(configuration([:]), publicKey: publicKey))

        func refusal(_ values: [String: String], key: [UInt8]? = nil, now: UInt64 = TrustTime.now()) -> String {
            do {
                _ = try Daemon.loadTrust(configuration(values), publicKey: key ?? publicKey, now: now)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(refusal(values, key: StaticKeyPair.generate().publicKey).contains("another public key"))
        XCTAssertTrue(refusal(values, now: TrustTime.now() + 400 * 86_400).contains("expired"))
        XCTAssertTrue(refusal(values.merging(["private-ip": "10.99.0.8"]) { $1 }).contains("differs from the address 10.99.0.7"))
        let otherCA = root + "/other"
        try await run(["ca", "init", "--dir", otherCA])
        XCTAssertTrue(refusal(values.merging(["network-ca-cert": otherCA + "/ca.crt"]) { $1 }).contains("not signed by the CA"))
        XCTAssertTrue(refusal(values.merging(["node-cert": caDir + "/ca.crt"]) { $1 }).contains("--node-cert"))
        XCTAssertTrue(refusal(values.merging(["node-cert": root + "/missing"]) { $1 }).contains("cannot read"))
    }

    func testStartUpWarnsOnceForEachWeaknessOfTheTrustBoundary() async throws {
        func warnings(_ values: [String: String], trust: NodeTrust? = nil) throws -> [String] {
            let lines = CapturedLines()
            let logger = Logger(label: "test") { _ in CapturingHandler(lines: lines) }
            Daemon.warnAboutTrust(try configuration(values), trust: trust, logger: logger)
            return lines.warnings
        }
        let secure = ["datastore-endpoints": "https://10.0.0.5:2379"]
        XCTAssertEqual(try warnings(secure).count, 1)
        XCTAssertTrue(try warnings(secure).contains { $0.contains("no network CA") })
        let plain = try warnings(["datastore-endpoints": "10.0.0.5:2379", "datastore-password": "p"])
        XCTAssertEqual(plain.count, 3, "\(plain)")
        XCTAssertTrue(plain.contains { $0.contains("plain HTTP") } && plain.contains { $0.contains("password") }, "\(plain)")
        XCTAssertEqual(try warnings(["datastore-endpoints": "10.0.0.5:2379", "datastore-tls-ca-cert": "/ca.pem"]).count, 1)
        let skipVerify = try warnings(["datastore-endpoints": "https://10.0.0.5:2379", "datastore-tls-skip-verify": "true"])
        XCTAssertEqual(skipVerify.count, 2)
        XCTAssertTrue(skipVerify.contains { $0.contains("--datastore-tls-skip-verify") }, "\(skipVerify)")

        let node = try await certifiedNode()
        let trust = try Daemon.loadTrust(configuration(["network-ca-cert": caDir + "/ca.crt", "node-cert": node.certificate]),
                                         publicKey: KeyEncoding.decode(node.publicKey))
        XCTAssertEqual(try warnings(secure, trust: trust), [], "with a CA and TLS there is nothing to warn about")
    }
}

/// Log lines at warning level or above, kept for a test.
private final class CapturedLines: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var warnings: [String] { lock.withLock { lines } }
}

private struct CapturingHandler: LogHandler {
    let lines: CapturedLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        if event.level >= .warning { lines.append("\(event.message)") }
    }
}
