import Logging

// Replaced by the daemon wiring (not part of this branch's work).
/// Runs the node with a resolved configuration until it is told to stop.
public enum Daemon {
    /// Starts the daemon.
    public static func run(configuration: Configuration, logger: Logger) async throws {
        logger.info("quantum \(QuantumVersion.string) configured: \(configuration)")
    }
}
