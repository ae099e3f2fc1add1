import Logging
import QuantumCore
import QuantumDatastore
import QuantumNode

extension Daemon {
    /// How often the engine's reflexive endpoints are compared with the published ones.
    static let reflexivePollInterval = Duration.seconds(1)

    /// Keeps this node's mapping carrying the reflexive endpoints its peers report (NAT
    /// traversal): stored again when they change, and, while there are any, checked every
    /// `verifyInterval` (the keep-alive may have claimed the address again with the mapping the
    /// node started with). Until the node learned any, the stored mapping is left alone (a
    /// successor of a rolling restart keeps its predecessor's). Ends by cancellation.
    static func publishReflexiveEndpoints(node: Node, registry: NetworkRegistry, address: IPv4Address,
                                          makeMapping: @Sendable (IPv4Address) -> Mapping, lease: LeaseRecord,
                                          verifyInterval: Duration, logger: Logger) async {
        // The mapping was registered without any.
        var published: [IPv4Endpoint] = []
        var sinceVerified = Duration.zero
        while !Task.isCancelled {
            let candidates = node.reflexiveCandidates()
            if candidates != published || (!candidates.isEmpty && sinceVerified >= verifyInterval),
               let current = lease.current {
                var mapping = makeMapping(address)
                mapping.candidates = candidates
                do {
                    if try await registry.republish(mapping, lease: current) {
                        if candidates != published {
                            logger.info("published reflexive endpoints: \(candidates.isEmpty ? "none" : candidates.map(\.description).joined(separator: ", "))")
                        }
                        published = candidates
                        sinceVerified = .zero
                    }
                } catch {
                    logger.warning("cannot publish the reflexive endpoints (retrying): \(error)")
                }
            }
            do { try await Task.sleep(for: reflexivePollInterval) } catch { return }
            sinceVerified += reflexivePollInterval
        }
    }
}
