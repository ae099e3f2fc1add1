import Foundation
import Logging
import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumDevice
import Synchronization

/// The engine of one quantum node: the workers of the data path and the control
/// plane that owns handshakes and timers, wired to a TUN device's queues and UDP sockets.
///
/// The node does no system configuration of its own: the caller creates the
/// device and sockets (or in-memory stand-ins in tests) and hands them over.
public final class Node: Sendable {
    /// What the engine needs to know about its own place in the network.
    public struct Settings: Sendable {
        /// This node's private address.
        public var privateIP: IPv4Address
        /// The MTU of the TUN device (largest inner packet).
        public var mtu: Int
        /// Whether peers may be reached over IPv4 / IPv6.
        public var useIPv4: Bool
        public var useIPv6: Bool

        public init(privateIP: IPv4Address, mtu: Int, useIPv4: Bool, useIPv6: Bool) {
            self.privateIP = privateIP
            self.mtu = mtu
            self.useIPv4 = useIPv4
            self.useIPv6 = useIPv6
        }
    }

    private let workers: [Worker]
    private let control: ControlPlane
    private let pollers: [Poller]
    private let finished = DispatchGroup()

    /// Builds the engine; `queues` and `sockets` must have the same count (one per worker).
    public init(settings: Settings, keyPair: StaticKeyPair, queues: [PacketQueue], sockets: [UDPSocket],
                logger: Logger) throws {
        precondition(!queues.isEmpty && queues.count == sockets.count, "one TUN queue and one socket per worker")
        let tables = ForwardingTableHolder()
        control = ControlPlane(localIP: settings.privateIP, keyPair: keyPair, sockets: sockets,
                               workerCount: queues.count, useIPv4: settings.useIPv4, useIPv6: settings.useIPv6,
                               tables: tables, logger: logger)
        var pollers: [Poller] = []
        var workers: [Worker] = []
        for (index, queue) in queues.enumerated() {
            let poller = try Poller()
            pollers.append(poller)
            workers.append(Worker(index: index, tun: queue, socket: sockets[index], mtu: settings.mtu,
                                  tables: tables, control: control, poller: poller))
        }
        self.pollers = pollers
        self.workers = workers
    }

    /// Starts the control thread and one thread per worker.
    public func start() {
        spawn(name: "quantum-control") { [control] in control.run() }
        for worker in workers {
            spawn(name: "quantum-worker-\(worker.index)") { worker.run() }
        }
    }

    private func spawn(name: String, _ body: @escaping @Sendable () -> Void) {
        finished.enter()
        let thread = Thread { [finished] in
            body()
            finished.leave()
        }
        thread.name = name
        thread.start()
    }

    /// Applies changes to the node's view of the network (this node's own mapping may be among them).
    public func apply(_ updates: [MappingUpdate]) {
        control.post(.mappings(updates))
    }

    /// Every counter, summed over workers.
    public func counters() -> CounterReport {
        CounterReport(workers: workers.map(\.counters), control: control.counters)
    }

    /// Stops every thread and waits for them, wiping session keys.
    public func stop() {
        workers.forEach { $0.stop() }
        control.stop()
        finished.wait()
    }
}
