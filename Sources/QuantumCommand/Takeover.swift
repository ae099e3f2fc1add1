import Dispatch
import Foundation
import Glibc
import Logging
import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumDevice
import QuantumNode

/// The new process's side of a rolling restart: the state, device and sockets it received
/// from the daemon it replaces, and the steps that finish the takeover.
struct Takeover: Sendable {
    /// How long the predecessor may take to freeze and send its state.
    static let stateTimeoutMilliseconds = 30_000
    /// Largest state accepted (peer maps of many thousand nodes fit).
    static let stateLimit = 256 << 20

    let channel: HandoverChannel
    let state: HandoverState
    let device: TunDevice
    let sockets: [UDPSocket]

    /// The channel this process inherited if a running daemon started it to take over (nil
    /// for a fresh start). Reads and clears `QT_HANDOVER_FD`, so no later child inherits it.
    static func inheritedChannel() -> HandoverChannel? {
        guard let text = getenv(handoverVariable).map({ String(cString: $0) }) else { return nil }
        unsetenv(handoverVariable)
        guard let descriptor = Int32(text), descriptor > 2, fcntl(descriptor, F_GETFD) >= 0 else { return nil }
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        return HandoverChannel(fileDescriptor: descriptor)
    }

    /// Tells the predecessor this process stops, and why (a refused configuration, a failed
    /// start). Sent only before `confirmRunning`, so the predecessor knows no packet was sealed.
    static func reportStopping(_ reason: String, over channel: HandoverChannel) {
        try? channel.send(kind: HandoverMessage.stopping.rawValue, payload: Array(reason.utf8))
    }

    /// Says this process is ready, then waits for the predecessor's state and descriptors.
    static func receive(over channel: HandoverChannel, configuration: Configuration) async throws -> Takeover {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result(catching: { try receiveBlocking(over: channel, configuration: configuration) }))
            }
        }
    }

    private static func receiveBlocking(over channel: HandoverChannel, configuration: Configuration) throws -> Takeover {
        let ready = HandoverReady(version: HandoverState.currentVersion, pid: getpid(),
                                  fixedSettings: configuration.fixedForReload)
        try channel.send(kind: HandoverMessage.ready.rawValue, payload: Array(try JSONEncoder().encode(ready)))
        var message = try channel.receive(timeoutMilliseconds: stateTimeoutMilliseconds, maximumLength: stateLimit)
        var adopted = false
        defer { if !adopted { message.fds.forEach { _ = close($0) } } }
        switch HandoverMessage(rawValue: message.kind) {
        case .state: break
        case .abort:
            throw Daemon.StartupError(description: "reload refused: \(String(decoding: message.payload, as: UTF8.self))")
        default:
            throw Daemon.StartupError(description: "unexpected handover message \(message.kind)")
        }
        let state = try HandoverCodec.decode(&message.payload)
        guard state.queueCount == configuration.workers, state.socketCount == configuration.workers,
              message.fds.count == state.queueCount + state.socketCount else {
            throw Daemon.StartupError(description: """
                the handover carries \(message.fds.count) descriptors for \(state.queueCount) queues and \
                \(state.socketCount) sockets; \(configuration.workers) workers expected
                """)
        }
        let family: UDPSocket.Family = configuration.disableV6 ? .ipv4 : .ipv6
        adopted = true
        return Takeover(
            channel: channel, state: state,
            device: TunDevice(adopting: state.deviceName, fileDescriptors: Array(message.fds.prefix(state.queueCount)),
                              offload: configuration.offload),
            sockets: message.fds.dropFirst(state.queueCount).map { UDPSocket(adopting: $0, family: family) })
    }

    /// The registration the predecessor held: same address, network, lease and peer map.
    var registration: Daemon.Registration {
        Daemon.Registration(
            address: IPv4Address(state.privateIP), network: state.network, peers: state.mappings.map(\.update),
            lease: state.lease.map { Lease(address: IPv4Address(state.privateIP), id: $0.id, key: $0.key) },
            source: "pid \(state.fromPID) (rolling restart)")
    }

    /// Installs the peer map, floating IP holders and sessions in the (not yet started) node, writes the pid file
    /// and tells the predecessor this process runs. From here on the predecessor exits; the
    /// caller starts the node right after.
    func confirmRunning(node: Node, floatingHolders: [IPv4Address: IPv4Address], pidFile: PidFile, logger: Logger) throws {
        var links = state.links
        let (sessions, problems) = node.restore(mappings: registration.peers, links: &links, floatingHolders: floatingHolders)
        for problem in problems { logger.warning("takeover: \(problem)") }
        try pidFile.write(pid: getpid())
        try channel.send(kind: HandoverMessage.running.rawValue, payload: [])
        logger.info("""
            took over \(sessions) session\(sessions == 1 ? "" : "s") of \(state.links.count) peer\(state.links.count == 1 ? "" : "s") \
            from pid \(state.fromPID)
            """)
    }

    /// Logs how long the data path was frozen (call right after starting the node).
    func logFreeze(logger: Logger) {
        let frozen = Double(monotonicNanoseconds() - state.frozenAt) / 1e6
        logger.info("data path frozen for \(String(format: "%.1f", frozen)) ms during the handover")
        channel.close()
    }
}
