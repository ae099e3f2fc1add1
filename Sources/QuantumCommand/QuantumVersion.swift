/// The version of this build of quantum, printed by `quantum --version`.
public enum QuantumVersion {
    /// Semantic version of the daemon.
    public static let string = "0.1.0"
}
