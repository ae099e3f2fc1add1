import Foundation
import Logging
import Synchronization
import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumNode

/// The network CA as this node uses it (`--network-ca-cert`, `--node-cert`).
struct NodeTrust: Sendable {
    /// What peers' mappings are checked against.
    var trust: NetworkTrust
    /// This node's own certificate, published in its mapping.
    var certificate: Certificate
}

extension Daemon {
    /// Reads and checks the CA and node certificates: the CA's self-signed and valid, the
    /// node's signed by it, valid, and for this node's `publicKey`; `--private-ip`, if given,
    /// must be the address it certifies. Nil without a CA.
    static func loadTrust(_ configuration: Configuration, publicKey: [UInt8],
                          now: UInt64 = TrustTime.now()) throws -> NodeTrust? {
        guard let caPath = configuration.networkCACert, let nodePath = configuration.nodeCert else { return nil }
        let authority = try readCertificate(caPath, kind: .authority)
        do {
            try authority.verifyAuthority(now: now)
        } catch {
            throw StartupError(description: "--network-ca-cert \(caPath): \(error)")
        }
        let certificate = try readCertificate(nodePath, kind: .node)
        do {
            try certificate.verifyNode(issuer: authority.publicKey, publicKey: publicKey, address: certificate.address, now: now)
        } catch TrustError.invalidField(let why) where certificate.publicKey != publicKey {
            throw StartupError(description: """
                --node-cert \(nodePath): \(why): this node's key is \(KeyEncoding.base64(publicKey)) \
                (quantum pubkey --data-dir \(configuration.dataDir))
                """)
        } catch TrustError.otherIssuer {
            throw StartupError(description: "--node-cert \(nodePath): not signed by the CA of --network-ca-cert \(caPath)")
        } catch {
            throw StartupError(description: "--node-cert \(nodePath): \(error)")
        }
        if let requested = configuration.privateIP, requested != certificate.address {
            throw StartupError(description: """
                --private-ip \(requested) differs from the address \(certificate.address) that --node-cert \(nodePath) certifies
                """)
        }
        return NodeTrust(trust: NetworkTrust(authority: authority), certificate: certificate)
    }

    private static func readCertificate(_ path: String, kind: Certificate.Kind) throws -> Certificate {
        let option = kind == .node ? "--node-cert" : "--network-ca-cert"
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw StartupError(description: "\(option) \(path): cannot read the file (\(error.localizedDescription))")
        }
        do {
            return try Certificate.decode(fileText: text, kind: kind)
        } catch {
            throw StartupError(description: "\(option) \(path): \(error)")
        }
    }

    /// One warning per weakness of the trust boundary at start-up, each saying what an
    /// attacker could do.
    static func warnAboutTrust(_ configuration: Configuration, trust: NodeTrust?, logger: Logger) {
        if let trust {
            logger.info("""
                network CA \(trust.trust.authority.name) in force: only peers it certifies are accepted; \
                this node's certificate (\(trust.certificate.name), \(trust.certificate.address)) is valid until \
                \(TrustTime.describe(trust.certificate.notAfter))
                """)
        } else {
            logger.warning("""
                no network CA is configured: any mapping in etcd is trusted, so etcd's access control \
                is this network's trust boundary (whoever can write to etcd can take over private addresses)
                """)
        }
        let plain = plainHTTPEndpoints(configuration)
        if !plain.isEmpty {
            logger.warning("""
                etcd is reached over plain HTTP (\(plain.joined(separator: ","))): anyone on that path can read \
                the map of nodes\(trust == nil ? " and rewrite it, redirecting private addresses" : "")
                """)
            if configuration.datastorePassword != nil {
                logger.warning("""
                    the etcd password is sent over plain HTTP: anyone on that path can learn it and write to etcd \
                    with this node's rights
                    """)
            }
        }
        if configuration.datastoreTLSSkipVerify {
            logger.warning("""
                --datastore-tls-skip-verify: etcd's certificate is not checked, so anyone on the path can pose as \
                etcd and feed this node a forged map\(trust == nil ? " (and take over private addresses)" : "")
                """)
        }
    }

    /// The etcd endpoints reached without TLS: `http://` URLs, and bare `host:port` when no TLS
    /// option is set (as ``EtcdClient`` picks the scheme).
    static func plainHTTPEndpoints(_ configuration: Configuration) -> [String] {
        let usesTLS = configuration.datastoreTLSCACert != nil || configuration.datastoreTLSCert != nil || configuration.datastoreTLSKey != nil
            || configuration.datastoreTLSSkipVerify
        return configuration.datastoreEndpoints.filter { endpoint in
            let lowered = endpoint.lowercased()
            return lowered.hasPrefix("http://") || (!lowered.contains("://") && !usesTLS)
        }
    }

    /// Follows the CA's revocation list and hands each one to the node (which checks the
    /// signature and the serial). Ends with an error when the list revokes this node itself:
    /// it stops, and its address lease runs out instead of being renewed.
    static func followRevocations(store: any Datastore, registry: NetworkRegistry, trust: NodeTrust, node: Node,
                                  syncInterval: Duration, logger: Logger) async throws {
        let (revokedSelf, reportRevokedSelf) = AsyncStream<UInt64>.makeStream()
        let reported = Reported()
        let follower = RevocationsFollower(store: store, key: registry.revocationsKey, logger: logger)
        let ownKey = trust.certificate.publicKey
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await follower.run(syncInterval: syncInterval) { bytes in
                    let list: RevocationList
                    do {
                        list = try RevocationList.decode(bytes)
                        try list.verify(issuer: trust.trust.authority.publicKey)
                    } catch {
                        if reported.first(bytes) {
                            logger.warning("ignoring the value at \(registry.revocationsKey): \(error)")
                        }
                        return
                    }
                    if list.revoked.contains(ownKey) { reportRevokedSelf.yield(list.serial) }
                    node.setRevocations(list)
                }
            }
            group.addTask {
                for await serial in revokedSelf {
                    throw StartupError(description: """
                        this node's key is revoked by the network CA (revocation list serial \(serial)): \
                        stopping and no longer claiming \(trust.certificate.address)
                        """)
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }
}

/// The bad values already warned about (the last one), so a bad list is reported once.
private final class Reported: Sendable {
    private let last = Mutex<[UInt8]?>(nil)

    func first(_ bytes: [UInt8]) -> Bool {
        last.withLock { last in
            defer { last = bytes }
            return last != bytes
        }
    }
}

extension NodeTrust {
    /// Whether a foreign mapping at this node's certified address may be overwritten: when
    /// it does not parse, or the CA does not vouch for it now.
    func isUsurper(_ holder: Mapping?) -> Bool {
        guard let holder else { return true }
        return (try? trust.check(holder, now: TrustTime.now())) == nil
    }
}
