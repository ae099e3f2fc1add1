import ArgumentParser
import Foundation
import Logging
import QuantumCore
import QuantumCrypto
import QuantumDatastore

/// `quantum ca`: the network CA that makes etcd untrusted (README "Network CA"). Its key
/// stays in a directory off the network; nodes get `--network-ca-cert` and `--node-cert`.
struct CACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Manage the network CA: its key, node certificates and the revocation list.",
        subcommands: [CAInitCommand.self, CASignCommand.self, CARevokeCommand.self, CAShowCommand.self,
                      CAPublishRevocationsCommand.self])
}

/// Runs a CA command's body, turning its failure into one line on stderr and exit status 1.
private func reportingFailure(_ command: String, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch {
        FileHandle.standardError.write(Data("quantum ca \(command): \(error)\n".utf8))
        throw ExitCode.failure
    }
}

/// Seconds in a duration written as `365d`, `12h`, `90m`, `3600s`.
private func validity(_ text: String) throws -> UInt64 {
    guard let milliseconds = DurationText.milliseconds(text), milliseconds >= 1000 else {
        throw CADirectory.Failure(description: "--valid-for '\(text)' is not a duration of at least 1s such as 365d")
    }
    return UInt64(milliseconds / 1000)
}

struct CAInitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a CA: ca.key (0600, keep it off the network) and ca.crt (for --network-ca-cert).")

    @Option(help: "The CA's directory (created 0700 if absent; an existing CA is never overwritten).")
    var dir: String
    @Option(help: "The CA's name, shown in its certificate.")
    var name = "quantum network CA"
    @Option(help: "How long the CA certificate is valid, e.g. 3650d.")
    var validFor = "3650d"

    func run() async throws {
        try await reportingFailure("init") {
            let certificate = try CADirectory(path: dir).initialize(name: name, validFor: validity(validFor), now: TrustTime.now())
            print("created CA '\(certificate.name)' in \(dir): \(CADirectory.keyFile) (keep it secret), \(CADirectory.certificateFile)")
        }
    }
}

struct CASignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign a node certificate binding a node's public key (quantum pubkey) to its private IP.")

    @Option(help: "The CA's directory.")
    var dir: String
    @Option(help: "The node's Curve25519 public key, base64 (printed by quantum pubkey).")
    var publicKey: String
    @Option(help: "The node's private IP (the node claims it).")
    var ip: String
    @Option(help: "The node's name, shown in its certificate.")
    var name: String
    @Option(help: "How long the certificate is valid, e.g. 365d.")
    var validFor = "365d"
    @Option(help: "The certificate file to write (for the node's --node-cert).")
    var out: String

    func run() async throws {
        try await reportingFailure("sign") {
            guard let address = IPv4Address(ip) else { throw CADirectory.Failure(description: "--ip '\(ip)' is not an IPv4 address") }
            let certificate = try CADirectory(path: dir).sign(publicKey: publicKey, address: address, name: name,
                                                              validFor: validity(validFor), now: TrustTime.now())
            try CADirectory.write(certificate.fileText, to: out, mode: 0o644)
            print("signed \(name) at \(address) until \(TrustTime.describe(certificate.notAfter)): \(out)")
        }
    }
}

struct CARevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a node: add its key to the CA's revocation list (next serial) and write the list.")

    @Option(help: "The CA's directory.")
    var dir: String
    @Argument(help: "The node's public key (base64) or its certificate file.")
    var node: String
    @Option(help: "Where to write the signed list (publish it with quantum ca publish-revocations).")
    var out: String

    func run() async throws {
        try await reportingFailure("revoke") {
            let (list, key) = try CADirectory(path: dir).revoke(node, now: TrustTime.now())
            try CADirectory.write(list.fileText, to: out, mode: 0o644)
            print("revoked \(KeyEncoding.base64(key)): list serial \(list.serial) with \(list.revoked.count) key\(list.revoked.count == 1 ? "" : "s") in \(out)")
        }
    }
}

struct CAShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Describe a CA certificate, node certificate, revocation list or CA key file.")

    @Argument(help: "The file to describe.")
    var file: String

    func run() async throws {
        try await reportingFailure("show") {
            print(try CADirectory.describe(fileText: CADirectory.readText(file), now: TrustTime.now()))
        }
    }
}

struct CAPublishRevocationsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish-revocations",
        abstract: "Store a revocation list in etcd at <prefix>/revocations, where nodes follow it.",
        discussion: """
            The list is signed by the CA, so whoever publishes it need not be trusted. A stored list with \
            a higher serial is never replaced. The datastore options are the daemon's (--datastore-endpoints, \
            --datastore-prefix, their QUANTUM_* variables or the --conf-file).
            """)

    @Argument(help: "The revocation list file (from quantum ca revoke).")
    var list: String
    /// The daemon's options (datastore endpoints, prefix, credentials, TLS).
    @ParentCommand var daemon: QuantumCommandLine

    func run() async throws {
        try await reportingFailure("publish-revocations") {
            let revocations = try RevocationList.decode(fileText: CADirectory.readText(list))
            try revocations.verify(issuer: revocations.issuer)
            let configuration = try Configuration.resolve(commandLine: daemon.commandLineValues,
                                                          environment: ProcessInfo.processInfo.environment)
            var logger = Logger(label: "quantum")
            logger.logLevel = .error
            let store = try EtcdClient(configuration: configuration.etcd, logger: logger)
            let registry = NetworkRegistry(store: store, prefix: configuration.datastorePrefix, logger: logger)
            do {
                try await RevocationsPublisher.publish(revocations, at: registry.revocationsKey, in: store)
                try? await store.shutdown()
            } catch {
                try? await store.shutdown()
                throw error
            }
            print("published revocation list serial \(revocations.serial) at \(registry.revocationsKey)")
        }
    }
}

/// Stores a revocation list unless a newer one (higher serial) is stored already.
enum RevocationsPublisher {
    static func publish(_ list: RevocationList, at key: String, in store: any Datastore) async throws {
        for _ in 0..<5 {
            guard let stored = try await store.get(key) else {
                if try await store.create(key, value: list.encoded, lease: nil) { return }
                continue
            }
            if let current = try? RevocationList.decode(stored.value), current.issuer == list.issuer,
               current.serial > list.serial {
                throw CADirectory.Failure(description: """
                    \(key) holds serial \(current.serial), newer than this list's \(list.serial); not replaced
                    """)
            }
            if try await store.replace(key, value: list.encoded, ifModRevision: stored.modRevision, lease: nil) { return }
        }
        throw CADirectory.Failure(description: "\(key) kept changing while being published; try again")
    }
}

/// `quantum pubkey`: prints the node's public key from its data directory, creating the
/// identity if absent, so the node can be certified before its first start.
struct PublicKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pubkey",
        abstract: "Print this node's public key (base64), creating its identity in the data directory if absent.",
        discussion: "The data directory is the daemon's: --data-dir, QUANTUM_DATA_DIR or the --conf-file.")

    /// The daemon's options (`--data-dir`, `--conf-file`).
    @ParentCommand var daemon: QuantumCommandLine

    func run() async throws {
        do {
            let dataDir = try Configuration.resolve(commandLine: daemon.commandLineValues,
                                                    environment: ProcessInfo.processInfo.environment).dataDir
            let identity = try Identity.loadOrCreate(dataDir: dataDir, makePrivateKey: { StaticKeyPair.generate().privateKey })
            print(KeyEncoding.base64(try StaticKeyPair(privateKey: identity.privateKey).publicKey))
        } catch {
            FileHandle.standardError.write(Data("quantum pubkey: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

extension Configuration {
    /// How to reach etcd: the datastore options (the daemon's and `publish-revocations`').
    var etcd: EtcdClient.Configuration {
        EtcdClient.Configuration(
            endpoints: datastoreEndpoints, username: datastoreUsername, password: datastorePassword,
            tlsCACert: datastoreTLSCACert, tlsCert: datastoreTLSCert, tlsKey: datastoreTLSKey,
            tlsSkipVerify: datastoreTLSSkipVerify)
    }
}
