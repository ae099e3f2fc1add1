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
    /// The offloads the kernel accepted: what it may hand the queues unsegmented or with
    /// partial checksums (empty without a virtio-net header).
    public let offloads: TunOffloads
    /// Why the kernel refused the offloads asked for, if it refused them all.
    public let offloadRefusal: String?

    /// Creates the device `namePattern` (may contain `%d`) with `queueCount` queues.
    /// - Parameter offload: open the queues with a virtio-net header (`IFF_VNET_HDR`) and
    ///   ask the kernel for the offloads in `TunOffloads.wanted` (see `offloads`); false
    ///   opens plain queues, one packet per read and write.
    public init(namePattern: String, queueCount: Int, offload: Bool = false) throws(SystemError) {
        precondition(queueCount >= 1)
        var queues: [PacketQueue] = []
        var name = namePattern
        for _ in 0..<queueCount {
            var actual = [CChar](repeating: 0, count: Int(IFNAMSIZ))
            let fd = qt_tun_open(name, 1, offload ? 1 : 0, &actual)
            guard fd >= 0 else {
                queues.forEach { $0.close() }
                throw SystemError("create TUN device '\(name)'", code: -fd)
            }
            name = String(decoding: actual.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            queues.append(PacketQueue(fileDescriptor: fd, virtioHeader: offload, coalescing: offload))
        }
        self.name = name
        (offloads, offloadRefusal) = offload ? TunOffloads.negotiate(queues[0].fileDescriptor) : ([], nil)
        self.queues = queues
    }

    /// Takes over the queues of an existing device, e.g. descriptors handed over by the
    /// process this one replaces: the device, its address and routes stay as they are.
    /// Whether the queues carry a virtio-net header is read from the descriptors (it cannot
    /// change on an open queue); with one, `offload` decides the offloads asked for anew
    /// (none when false) and whether writes are coalesced.
    public init(adopting name: String, fileDescriptors: [Int32], offload: Bool) {
        precondition(!fileDescriptors.isEmpty)
        let header = qt_tun_has_vnet_header(fileDescriptors[0]) == 1
        self.name = name
        queues = fileDescriptors.map { PacketQueue(fileDescriptor: $0, virtioHeader: header, coalescing: header && offload) }
        if !header {
            (offloads, offloadRefusal) = ([], nil)
        } else if offload {
            (offloads, offloadRefusal) = TunOffloads.negotiate(fileDescriptors[0])
        } else {
            let result = qt_tun_set_offload(fileDescriptors[0], 0)
            (offloads, offloadRefusal) = ([], result == 0 ? nil : "\(SystemError("clear TUN offloads", code: -result))")
        }
    }

    /// Whether the queues carry a virtio-net header in front of every packet.
    public var virtioHeader: Bool { queues[0].virtioHeader }

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
    /// Whether every packet read or written is preceded by a `VirtioNetHeader`.
    public let virtioHeader: Bool
    /// Whether consecutive TCP segments of a flow are joined into one write (needs `virtioHeader`).
    public let coalescing: Bool

    public init(fileDescriptor: Int32, virtioHeader: Bool = false, coalescing: Bool = false) {
        precondition(virtioHeader || !coalescing, "coalescing needs the virtio-net header")
        self.fileDescriptor = fileDescriptor
        self.virtioHeader = virtioHeader
        self.coalescing = coalescing
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

    /// Writes one packet behind a virtio-net header (`VirtioNetHeader.size` bytes at `header`),
    /// in one `writev`. Returns 0, or the errno with which the kernel refused it.
    @inline(__always)
    @discardableResult
    public func write(header: UnsafeRawPointer, packet: UnsafeRawBufferPointer) -> Int32 {
        var parts = (iovec(iov_base: UnsafeMutableRawPointer(mutating: header), iov_len: VirtioNetHeader.size),
                     iovec(iov_base: UnsafeMutableRawPointer(mutating: packet.baseAddress), iov_len: packet.count))
        while true {
            let count = withUnsafePointer(to: &parts) {
                $0.withMemoryRebound(to: iovec.self, capacity: 2) { Glibc.writev(fileDescriptor, $0, 2) }
            }
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

/// Offloads a TUN device accepts from the network stack (`TUNSETOFFLOAD`, the `TUN_F_*` bits):
/// with them the kernel hands over packets with partial checksums and TCP/UDP super-packets
/// of up to 64 KB, which the data path segments (`TCPSegmentation`).
public struct TunOffloads: OptionSet, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Partial checksums (`TUN_F_CSUM`); the others need it.
    public static let checksum = TunOffloads(rawValue: 0x01)
    /// TCP over IPv4 super-packets (`TUN_F_TSO4`).
    public static let tcp4 = TunOffloads(rawValue: 0x02)
    /// UDP super-packets (`TUN_F_USO4 | TUN_F_USO6`, Linux 6.2+): the kernel accepts them
    /// only together (one device feature covers both).
    public static let udp = TunOffloads(rawValue: 0x20 | 0x40)

    /// What quantum asks for, then less, one feature at a time, while the kernel refuses.
    /// TSO6 is not asked for: the overlay is IPv4-only and every IPv6 packet is dropped, so
    /// the kernel may as well segment those itself (it does not route IPv6 to the device
    /// unless someone gives it an IPv6 address). USO6 comes with USO4 (see `udp`); its
    /// super-packets are dropped like any IPv6 packet.
    public static let wanted: [TunOffloads] = [[.checksum, .tcp4, .udp], [.checksum, .tcp4], [.checksum]]

    public var description: String {
        isEmpty ? "none" : [(TunOffloads.checksum, "csum"), (.tcp4, "tso4"), (.udp, "uso")]
            .filter { contains($0.0) }.map(\.1).joined(separator: " ")
    }

    /// Sets the most of `wanted` the kernel accepts on the device of queue `fd`.
    /// - Returns: what it accepted, and why it refused everything if it did.
    static func negotiate(_ fd: Int32) -> (TunOffloads, String?) {
        var result: Int32 = 0
        for offloads in wanted {
            result = qt_tun_set_offload(fd, offloads.rawValue)
            if result == 0 { return (offloads, nil) }
            if result != -EINVAL { break }
        }
        return ([], "\(SystemError("set TUN offloads", code: -result))")
    }
}
