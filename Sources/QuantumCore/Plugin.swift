/// A data-path plugin a node can advertise in its mapping (upstream quantum's `--plugins`).
public enum Plugin: String, Sendable, CaseIterable {
    /// LZ4 compression of packets before sealing; used with a peer only when both advertise it.
    case compression
    /// Upstream's encryption plugin: here every packet is always encrypted, so it changes nothing.
    case encryption
}
