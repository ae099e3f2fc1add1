import QuantumCore
import QuantumCrypto
import QuantumDatastore

// The network CA (`--network-ca-cert`): only mappings whose certificate the CA signed for
// exactly their key and address count. An untrusted mapping is ignored with one warning,
// and the last trusted mapping of its address stays in force, so traffic keeps going to
// the genuine holder. Certificates that expire and keys the CA revokes are cut off: their
// peer, sessions and route go, and their initiations find no peer (the stranger path only
// ever greets keys that own a peer).
extension ControlPlane {
    /// The injected clock's wall time, in seconds since 1970 (the time base of certificates).
    var certificateTime: UInt64 { clock.timestamp().label &- TAI64N.epochLabel }

    /// Whether a mapping change may be applied: always without a CA; with one, deletions
    /// and mappings carrying a valid certificate for their key and address.
    func admits(_ update: MappingUpdate) -> Bool {
        guard let trust, let mapping = update.mapping else { return true }
        do {
            let certificate = try trust.check(mapping, now: certificateTime)
            certificateExpiry[update.address] = certificate.notAfter
            return true
        } catch {
            reportUntrusted(mapping, why: "\(error)")
            return false
        }
    }

    /// Cuts off the peers whose certificate expired; returns true if any went.
    func expireCertificates(now: UInt64) -> Bool {
        guard trust != nil, !certificateExpiry.isEmpty else { return false }
        let time = certificateTime
        var changed = false
        for (address, notAfter) in certificateExpiry where notAfter < time {
            certificateExpiry[address] = nil
            guard known[address] != nil else { continue }
            logger.warning("the certificate of peer \(address) expired at \(TrustTime.describe(notAfter)); cut off")
            changed = forget(address, now: now) || changed
        }
        return changed
    }

    /// Adopts a revocation list (signed by the CA, not older than the one in force) and cuts
    /// off every peer whose key it names. Returns true if any peer went.
    func applyRevocations(_ list: RevocationList, now: UInt64) -> Bool {
        guard trust != nil else { return false }
        do {
            guard try trust!.adopt(list) else { return false }
        } catch {
            logger.warning("revocation list serial \(list.serial) ignored: \(error)")
            return false
        }
        logger.info("revocation list serial \(list.serial) in force: \(list.revoked.count) revoked key\(list.revoked.count == 1 ? "" : "s")")
        var changed = false
        for (address, claim) in known where list.revoked.contains(claim.mapping.publicKey) {
            logger.warning("peer \(address) (key \(KeyEncoding.base64(claim.mapping.publicKey))) is revoked; cut off")
            certificateExpiry[address] = nil
            changed = forget(address, now: now) || changed
        }
        return changed
    }

    /// Warns once per address and key about a mapping the CA does not vouch for.
    private func reportUntrusted(_ mapping: Mapping, why: String) {
        let entry = UntrustedMapping(address: mapping.privateIP, publicKey: mapping.publicKey)
        if untrustedReported.count >= ControlPlane.untrustedReportLimit { untrustedReported.removeAll() }
        guard untrustedReported.insert(entry).inserted else { return }
        let kept = known[mapping.privateIP] != nil ? "; the last trusted mapping of the address stays in force" : ""
        logger.warning("""
            ignoring the mapping of \(mapping.privateIP) with key \(KeyEncoding.base64(mapping.publicKey)): \
            its certificate is not acceptable (\(why))\(kept)
            """)
    }
}

/// An address and key whose untrusted mapping was already reported.
struct UntrustedMapping: Hashable {
    var address: IPv4Address
    var publicKey: [UInt8]
}
