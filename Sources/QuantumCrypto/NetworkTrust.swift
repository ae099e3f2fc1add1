import QuantumCore

/// What a node with a network CA (`--network-ca-cert`) trusts: mappings whose certificate the
/// CA signed for exactly their key and address, still valid, and not revoked by the newest
/// revocation list seen.
public struct NetworkTrust: Sendable {
    /// The CA's own certificate.
    public let authority: Certificate
    /// The newest verified revocation list, if any.
    public private(set) var revocations: RevocationList?

    public init(authority: Certificate) {
        self.authority = authority
    }

    /// The mapping's certificate if the mapping may be trusted at `now` (seconds since 1970).
    public func check(_ mapping: Mapping, now: UInt64) throws(TrustError) -> Certificate {
        guard let text = mapping.certificate else { throw .invalidField("the mapping carries no certificate") }
        let certificate = try Certificate.decode(base64: text)
        try certificate.verifyNode(issuer: authority.publicKey, publicKey: mapping.publicKey,
                                   address: mapping.privateIP, now: now)
        guard !isRevoked(mapping.publicKey) else { throw .revoked }
        return certificate
    }

    /// Whether the newest revocation list names `publicKey`.
    public func isRevoked(_ publicKey: [UInt8]) -> Bool {
        revocations?.revoked.contains(publicKey) == true
    }

    /// Takes a revocation list the CA signed. Returns false (and changes nothing) for the
    /// list already in force; throws for a list of another CA, a bad signature, or a
    /// serial lower than the one in force (a rollback).
    public mutating func adopt(_ list: RevocationList) throws(TrustError) -> Bool {
        try list.verify(issuer: authority.publicKey)
        if let current = revocations {
            guard list.serial >= current.serial else { throw .staleRevocations(serial: list.serial, seen: current.serial) }
            guard list.serial > current.serial || list != current else { return false }
            guard list.serial > current.serial else {
                throw .invalidField("revocation list serial \(list.serial) was seen with other contents")
            }
        }
        revocations = list
        return true
    }
}
