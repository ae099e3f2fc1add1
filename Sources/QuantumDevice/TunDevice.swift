import CQuantumLinux
import Glibc
import QuantumCore

/// The node's TUN device: one kernel interface with one file descriptor per queue.
///
/// Each worker owns one queue (`IFF_MULTI_QUEUE`), so the kernel spreads flows
/// across workers. The device is not persistent: it disappears when the last
/// queue is closed, which is also what happens when the process exits.
public final class TunDevice: Sendable {
    /// The interface name the kernel chose (e.g. `quantum0`).
    public let name: String
    /// One queue per worker.
    public let queues: [PacketQueue]

    /// Creates the device `namePattern` (may contain `%d`) with `queueCount` queues.
    public init(namePattern: String, queueCount: Int) throws(SystemError) {
        precondition(queueCount >= 1)
        var queues: [PacketQueue] = []
        var name = namePattern
        for _ in 0..<queueCount {
            var actual = [CChar](repeating: 0, count: Int(IFNAMSIZ))
            let fd = qt_tun_open(name, 1, &actual)
            guard fd >= 0 else {
                queues.forEach { $0.close() }
                throw SystemError("create TUN device '\(name)'", code: -fd)
            }
            name = String(decoding: actual.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            queues.append(PacketQueue(fileDescriptor: fd))
        }
        self.name = name
        self.queues = queues
    }

    /// Takes over the queues of an existing device, e.g. descriptors handed over by the
    /// process this one replaces: the device, its address and routes stay as they are.
    public init(adopting name: String, queues: [PacketQueue]) {
        precondition(!queues.isEmpty)
        self.name = name
        self.queues = queues
    }

    /// Gives the device its address in the private network, its MTU, and brings it up.
    /// The kernel adds the route for `network` through the device with the address.
    public func configure(address: IPv4Address, network: IPv4Prefix, mtu: Int) throws(SystemError) {
        var stage: Int32 = 0
        let result = qt_interface_configure(name, address.value.bigEndian, network.mask.bigEndian, Int32(mtu), &stage)
        guard result == 0 else {
            let step = ["open a configuration socket", "set address \(address)", "set netmask /\(network.length)",
                        "set MTU \(mtu)", "bring the device up"][Int(stage)]
            throw SystemError("\(name): \(step)", code: -result)
        }
    }

    /// Closes every queue, which removes the device.
    public func close() {
        queues.forEach { $0.close() }
    }
}

/// A packet-oriented file descriptor read and written one whole IP packet at a time:
/// a TUN queue in production, one end of a `SOCK_DGRAM` socketpair in tests.
/// Non-blocking: reads return 0 when nothing is waiting.
public struct PacketQueue: Sendable {
    /// The file descriptor, for polling.
    public let fileDescriptor: Int32

    public init(fileDescriptor: Int32) {
        self.fileDescriptor = fileDescriptor
    }

    /// Reads one packet into `buffer`. Returns its length, 0 when none is waiting,
    /// or a negative errno.
    @inline(__always)
    public func read(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int {
        while true {
            let count = Glibc.read(fileDescriptor, buffer, capacity)
            if count >= 0 { return count }
            if errno == EINTR { continue }
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -Int(errno)
        }
    }

    /// Writes one packet. Returns 0, or the errno with which the kernel refused it.
    @inline(__always)
    @discardableResult
    public func write(_ packet: UnsafeRawPointer, length: Int) -> Int32 {
        while true {
            let count = Glibc.write(fileDescriptor, packet, length)
            if count >= 0 { return 0 }
            if errno == EINTR { continue }
            return errno
        }
    }

    /// Makes a connected pair of in-memory packet queues (for tests and fakes).
    public static func pair() throws(SystemError) -> (PacketQueue, PacketQueue) {
        var fds: [Int32] = [0, 0]
        try retryingInterrupts("socketpair") {
            socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds)
        }
        return (PacketQueue(fileDescriptor: fds[0]), PacketQueue(fileDescriptor: fds[1]))
    }

    /// Closes the descriptor.
    public func close() {
        _ = Glibc.close(fileDescriptor)
    }
}
