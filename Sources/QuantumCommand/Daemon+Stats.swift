import Logging
import QuantumDatastore
import QuantumNode
import QuantumStats

extension Daemon {
    /// Starts the stats endpoint for `node` unless `--stats-port` is 0.
    /// - Throws: ``StartupError`` naming the address when it cannot be bound.
    static func startStatsEndpoint(configuration: Configuration, node: Node, registry: NetworkRegistry,
                                   logger: Logger) async throws -> StatsServer? {
        guard configuration.statsPort != 0 else {
            logger.info("stats endpoint off (--stats-port 0)")
            return nil
        }
        let source = StatsSource(snapshot: { node.snapshot() }, sync: { registry.syncStatus() })
        let host = configuration.statsAddress
        let authority = host.contains(":") ? "[\(host)]:\(configuration.statsPort)" : "\(host):\(configuration.statsPort)"
        do {
            let server = try await StatsServer.start(host: host, port: Int(configuration.statsPort),
                                                     route: configuration.statsRoute, source: source, logger: logger)
            logger.info("stats endpoint on http://\(authority) (\(configuration.statsRoute), /metrics, /peers, /node)")
            return server
        } catch {
            throw StartupError(description: "cannot serve the stats endpoint on \(authority) (--stats-address, --stats-port): \(error)")
        }
    }
}
