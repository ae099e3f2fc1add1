import CQuantumLinux
import Dispatch
import Foundation
import Glibc
import Logging
import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumDevice
import QuantumNode
import Synchronization

/// The running daemon's side of a rolling restart (SIGHUP): start a copy of this binary,
/// let it build everything slow, then freeze the data path, hand over the device queues,
/// sockets, peer map and live sessions, and exit once the copy runs. If anything fails
/// before the copy says it runs, this process resumes where it stopped (see README,
/// "Reloading").
struct RollingRestart: Sendable {
    /// How long the successor may take to read its configuration and get ready.
    static let readyTimeoutMilliseconds = 60_000
    /// How long the successor may take from the state to running.
    static let runningTimeoutMilliseconds = 10_000
    /// Largest message the predecessor accepts from the successor.
    static let messageLimit = 1 << 20

    let configuration: Configuration
    let node: Node
    let device: TunDevice
    let sockets: [UDPSocket]
    let address: IPv4Address
    let network: NetworkConfig
    let lease: LeaseRecord
    let registry: NetworkRegistry
    let floating: FloatingIPElection
    let notifier: ServiceNotifier
    let logger: Logger

    /// Runs the restart on a thread of its own (it blocks on the channel). Returns true when
    /// the successor runs: the caller must then exit 0 at once, without any clean-up, since
    /// the device, mapping, lease and pid file now belong to the successor.
    func perform() async -> Bool {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: performBlocking()) }
        }
    }

    private struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private func performBlocking() -> Bool {
        logger.info("SIGHUP: starting a new quantum process to take over from pid \(getpid())")
        warnIfFailed(notifier.reloading())
        let started = monotonicNanoseconds()
        let channel: HandoverChannel
        let child: pid_t
        do {
            let (ours, theirs) = try HandoverChannel.pair()
            defer { theirs.close() }
            channel = ours
            child = try Self.spawnSuccessor(keeping: theirs.fileDescriptor)
        } catch {
            return carryOn("reload failed: cannot start the new process: \(error)")
        }
        defer { channel.close() }

        // Phase 1: the successor reads its configuration and builds what is slow.
        let ready: HandoverReady
        do {
            let message = try channel.receive(timeoutMilliseconds: Self.readyTimeoutMilliseconds, maximumLength: Self.messageLimit)
            message.fds.forEach { _ = close($0) }
            switch HandoverMessage(rawValue: message.kind) {
            case .ready:
                ready = try JSONDecoder().decode(HandoverReady.self, from: Data(message.payload))
            case .stopping:
                reap(child)
                return carryOn("reload refused: \(String(decoding: message.payload, as: UTF8.self))")
            default:
                throw Failure(description: "unexpected message \(message.kind) from the new process")
            }
        } catch {
            stop(child)
            return carryOn("reload failed: \(error)")
        }
        var refusal: String?
        if ready.version != HandoverState.currentVersion {
            refusal = "the new binary reads handover format \(ready.version), this one writes \(HandoverState.currentVersion); restart the service instead"
        } else {
            refusal = Configuration.reloadRefusal(running: configuration.fixedForReload, new: ready.fixedSettings)
        }
        if let refusal {
            try? channel.send(kind: HandoverMessage.abort.rawValue, payload: Array(refusal.utf8))
            reap(child)
            return carryOn("reload refused: \(refusal)")
        }

        // Phase 2: freeze, and hand everything over.
        let frozenAt = monotonicNanoseconds()
        node.pause()
        var sessions = 0
        do {
            var state = HandoverState(
                fromPID: getpid(), frozenAt: frozenAt, deviceName: device.name, queueCount: device.queues.count,
                socketCount: sockets.count, privateIP: address.value, network: network,
                lease: lease.current.map { HandedLease(id: $0.id, key: $0.key) },
                mappings: registry.deliveredMappings().map(HandedMapping.init), links: node.links(),
                floating: floating.handover())
            sessions = state.links.reduce(0) { $0 + $1.sessionCount }
            var blob = try HandoverCodec.encode(&state)
            defer { Session.wipe(&blob) }
            try channel.send(kind: HandoverMessage.state.rawValue, payload: blob,
                             fds: device.queues.map(\.fileDescriptor) + sockets.map(\.fileDescriptor))
        } catch {
            stop(child)
            node.resume()
            return carryOn("reload failed: cannot hand over the state: \(error); resumed after \(milliseconds(since: frozenAt)) ms")
        }

        // Phase 3: the successor installs it all and starts, or says why not.
        do {
            let message = try channel.receive(timeoutMilliseconds: Self.runningTimeoutMilliseconds, maximumLength: Self.messageLimit)
            message.fds.forEach { _ = close($0) }
            switch HandoverMessage(rawValue: message.kind) {
            case .running:
                logger.info("""
                    handed over \(sessions) session\(sessions == 1 ? "" : "s") to pid \(child): reload took \
                    \(milliseconds(since: started)) ms; exiting
                    """)
                return true
            case .stopping:
                throw Failure(description: String(decoding: message.payload, as: UTF8.self))
            default:
                throw Failure(description: "unexpected message \(message.kind) from the new process")
            }
        } catch {
            // Never resume before the successor is gone: it must not seal with these sessions.
            stop(child)
            node.resume()
            return carryOn("reload failed: \(error); this process resumed after \(milliseconds(since: frozenAt)) ms frozen")
        }
    }

    /// Logs why this process keeps running, and tells the service manager it is ready again.
    private func carryOn(_ reason: String) -> Bool {
        logger.error("\(reason)")
        warnIfFailed(notifier.ready())
        return false
    }

    private func warnIfFailed(_ problem: String?) {
        if let problem { logger.warning("\(problem)") }
    }

    /// Kills the successor and waits for it.
    private func stop(_ child: pid_t) {
        kill(child, SIGKILL)
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
    }

    /// Collects the exit status of a successor that is exiting by itself, off this thread.
    private func reap(_ child: pid_t) {
        DispatchQueue.global().async {
            var status: Int32 = 0
            while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        }
    }

    private func milliseconds(since start: UInt64) -> String {
        String(format: "%.1f", Double(monotonicNanoseconds() - start) / 1e6)
    }

    /// Starts this program again with the same arguments and environment, plus the number of
    /// the channel descriptor it keeps. The program is the file this process runs from; when
    /// that was replaced on disk (an upgrade), the new file at the same path.
    static func spawnSuccessor(keeping descriptor: Int32) throws -> pid_t {
        var program = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        if program.hasSuffix(" (deleted)") { program.removeLast(" (deleted)".count) }
        var environment = ProcessInfo.processInfo.environment
        environment[handoverVariable] = "\(descriptor)"
        let arguments = [program] + CommandLine.arguments.dropFirst()
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: Int32 = 0
        let result = qt_spawn_keeping_fd(program, argv, envp, descriptor, &pid)
        guard result == 0 else { throw SystemError("start \(program)", code: -result) }
        return pid
    }
}

/// The node key's current lease, as the datastore side knows it (it may be re-granted).
final class LeaseRecord: Sendable {
    private let lease = Mutex<Lease?>(nil)

    var current: Lease? { lease.withLock { $0 } }

    func record(_ new: Lease) { lease.withLock { $0 = new } }
}
