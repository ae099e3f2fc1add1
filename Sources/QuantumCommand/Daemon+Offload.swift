import QuantumDevice

extension Daemon {
    /// The start-up line that says which offloads are on, e.g.
    /// "offloads: tun csum tso4 uso, TCP coalescing on writes, udp gso gro" or
    /// "offloads: off (--offload off)". Call it once the workers set up their sockets.
    static func offloadSummary(_ configuration: Configuration, device: TunDevice, socket: UDPSocket) -> String {
        guard device.virtioHeader else {
            return configuration.offload
                ? "offloads: off (the handed-over TUN queues have no virtio-net header; a restart enables them)"
                : "offloads: off (--offload off)"
        }
        guard configuration.offload else {
            return "offloads: off (--offload off; the handed-over TUN queues keep their virtio-net header, unused)"
        }
        let refusal = device.offloadRefusal.map { " (kernel refused: \($0))" } ?? ""
        let udp = [(socket.sendOffload, "gso"), (socket.receiveOffload, "gro")].filter(\.0).map(\.1)
        return "offloads: tun \(device.offloads)\(refusal), TCP coalescing on writes, "
            + "udp \(udp.isEmpty ? "none (the kernel refused UDP_SEGMENT and UDP_GRO)" : udp.joined(separator: " "))"
    }
}
