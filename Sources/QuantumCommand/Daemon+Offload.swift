import QuantumDevice

extension Daemon {
    /// The start-up line that says which offloads are on, e.g.
    /// "offloads: tun csum tso4 uso, coalescing on" or "offloads: off (--offload off)".
    static func offloadSummary(_ configuration: Configuration, device: TunDevice) -> String {
        guard device.virtioHeader else {
            return configuration.offload
                ? "offloads: off (the handed-over TUN queues have no virtio-net header; a restart enables them)"
                : "offloads: off (--offload off)"
        }
        guard configuration.offload else {
            return "offloads: off (--offload off; the handed-over TUN queues keep their virtio-net header, unused)"
        }
        let refusal = device.offloadRefusal.map { " (kernel refused: \($0))" } ?? ""
        return "offloads: tun \(device.offloads)\(refusal), TCP coalescing on writes"
    }
}
