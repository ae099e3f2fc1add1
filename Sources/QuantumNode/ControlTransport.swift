import QuantumDevice

/// Where the control plane's own datagrams go: handshake messages, keepalives and
/// packets that waited for a handshake. Injected so tests can wire control planes
/// to each other in memory.
protocol ControlTransport: Sendable {
    /// The address family of the node's sockets (IPv4 mapping into IPv6 endpoints depends on it).
    var family: UDPSocket.Family { get }
    /// Sends one datagram from the socket of worker `worker` (responses go out of the
    /// socket their initiation came in on). Failures are not reported: the handshake
    /// timers retry.
    func send(_ bytes: UnsafeRawBufferPointer, to endpoint: UDPEndpoint, worker: Int)
}

/// The real transport: the workers' UDP sockets.
struct SocketTransport: ControlTransport {
    let sockets: [UDPSocket]

    var family: UDPSocket.Family { sockets[0].family }

    func send(_ bytes: UnsafeRawBufferPointer, to endpoint: UDPEndpoint, worker: Int) {
        sockets[worker].send(bytes, to: endpoint)
    }
}
