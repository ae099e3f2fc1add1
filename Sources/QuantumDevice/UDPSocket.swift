import CQuantumLinux
import Glibc
import QuantumCore

/// One non-blocking UDP socket of the node's port; each worker owns one, all
/// bound to the same port with `SO_REUSEPORT` so the kernel spreads peers across them.
public struct UDPSocket: Sendable {
    /// The address family of a socket: an IPv6 socket is dual-stack unless IPv4 is disabled.
    public enum Family: Sendable {
        case ipv4, ipv6
    }

    /// The file descriptor, for polling.
    public let fileDescriptor: Int32
    /// Whether endpoints for this socket are `sockaddr_in` or `sockaddr_in6`.
    public let family: Family

    /// Opens and binds a socket.
    /// - Parameters:
    ///   - family: `.ipv6` for a dual-stack (or, with `ipv6Only`, IPv6-only) socket, `.ipv4` for IPv4 only.
    ///   - bindAddress: textual address to bind, or nil for all addresses.
    ///   - port: the UDP port.
    ///   - ipv6Only: set `IPV6_V6ONLY` (when IPv4 is disabled).
    public init(family: Family, bindAddress: String?, port: UInt16, ipv6Only: Bool = false) throws(SystemError) {
        let domain = family == .ipv6 ? AF_INET6 : AF_INET
        let fd = socket(domain, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("open UDP socket", code: errno) }
        func option(_ level: Int32, _ name: Int32, _ value: Int32, _ what: String) throws(SystemError) {
            var value = value
            guard setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
                let code = errno
                Glibc.close(fd)
                throw SystemError("set \(what) on UDP socket", code: code)
            }
        }
        try option(SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT")
        if family == .ipv6 { try option(Int32(IPPROTO_IPV6), IPV6_V6ONLY, ipv6Only ? 1 : 0, "IPV6_V6ONLY") }
        // Large buffers absorb bursts while a worker is busy sealing a batch.
        try option(SOL_SOCKET, SO_RCVBUF, 4 << 20, "SO_RCVBUF")
        try option(SOL_SOCKET, SO_SNDBUF, 4 << 20, "SO_SNDBUF")

        var address = sockaddr_in6()
        var length: socklen_t
        switch family {
        case .ipv4:
            var v4 = sockaddr_in()
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            if let bindAddress {
                guard let parsed = IPv4Address(bindAddress) else {
                    Glibc.close(fd)
                    throw SystemError("bind UDP socket to '\(bindAddress)' (not an IPv4 address)", code: EINVAL)
                }
                v4.sin_addr.s_addr = parsed.value.bigEndian
            }
            withUnsafeMutableBytes(of: &address) { raw in withUnsafeBytes(of: v4) { raw.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        case .ipv6:
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            if let bindAddress {
                let bytes: [UInt8]
                if let v6 = IPv6Address(bindAddress) {
                    bytes = v6.bytes
                } else if let v4 = IPv4Address(bindAddress) {
                    bytes = UDPEndpoint(v4, port: port, family: .ipv6).addressBytes
                } else {
                    Glibc.close(fd)
                    throw SystemError("bind UDP socket to '\(bindAddress)' (not an IP address)", code: EINVAL)
                }
                withUnsafeMutableBytes(of: &address.sin6_addr) { $0.copyBytes(from: bytes) }
            }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else {
            let code = errno
            Glibc.close(fd)
            throw SystemError("bind UDP port \(port)\(bindAddress.map { " on \($0)" } ?? "")", code: code)
        }
        fileDescriptor = fd
        self.family = family
    }

    /// Takes over an open, bound, non-blocking socket of `family` (e.g. one handed over by
    /// the process this one replaces).
    public init(adopting fileDescriptor: Int32, family: Family) {
        self.fileDescriptor = fileDescriptor
        self.family = family
    }

    /// The local port the socket is bound to (useful when bound to port 0).
    public var localPort: UInt16 {
        var address = sockaddr_in6()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fileDescriptor, $0, &length) }
        }
        return UInt16(bigEndian: address.sin6_port)
    }

    /// Receives up to `count` datagrams into the batch's buffers without blocking.
    /// Returns how many arrived (0 if none) or a negative errno.
    @inline(__always)
    public func receive(_ batch: DatagramBatch, count: Int) -> Int {
        Int(qt_recv_batch(fileDescriptor, batch.slots, UInt32(min(count, batch.capacity))))
    }

    /// Sends the first `count` datagrams of the batch (at most its capacity).
    /// - Returns: exactly how many the kernel accepted (the others were refused, e.g.
    ///   unreachable or out of buffers) and the errno of the last refusal (0 if none).
    @inline(__always)
    @discardableResult
    public func send(_ batch: DatagramBatch, count: Int) -> (accepted: Int, lastError: Int32) {
        guard count > 0 else { return (0, 0) }
        var lastError: Int32 = 0
        let accepted = qt_send_batch(fileDescriptor, batch.slots, UInt32(min(count, batch.capacity)), &lastError)
        return (Int(accepted), lastError)
    }

    /// Sends one datagram (control traffic: handshakes, keepalives).
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, to endpoint: UDPEndpoint) -> Bool {
        var address = endpoint.storage
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fileDescriptor, bytes.baseAddress, bytes.count, 0, $0, endpoint.length)
            }
        } >= 0
    }

    /// Marks every packet the socket sends with `mark` (`SO_MARK`, needs CAP_NET_ADMIN), so
    /// that policy routing can keep them off the tunnel (gateway mode).
    public func setMark(_ mark: UInt32) throws(SystemError) {
        var value = mark
        guard setsockopt(fileDescriptor, SOL_SOCKET, SO_MARK, &value, socklen_t(MemoryLayout<UInt32>.size)) == 0 else {
            throw SystemError("set SO_MARK \(mark) on UDP socket", code: errno)
        }
    }

    /// Closes the descriptor.
    public func close() {
        _ = Glibc.close(fileDescriptor)
    }
}

extension UDPEndpoint {
    /// The 16 address bytes of an IPv6 (or mapped IPv4) endpoint.
    var addressBytes: [UInt8] { withUnsafeBytes(of: storage.sin6_addr) { Array($0) } }
}

/// Preallocated datagram slots with their buffers, reused for every batch a worker moves.
///
/// Owned by exactly one worker thread; the buffers stay valid until the batch is freed.
/// Each buffer has `headroom` bytes before the place a datagram or packet starts
/// — room to write the transport header in place — and `capacity` bytes after.
public final class DatagramBatch: @unchecked Sendable {
    /// The C datagram descriptors handed to recvmmsg/sendmmsg.
    public let slots: UnsafeMutablePointer<qt_datagram>
    /// How many slots there are.
    public let capacity: Int
    /// Bytes each slot's buffer holds.
    public let bufferSize: Int
    private let memory: UnsafeMutableRawPointer

    /// Allocates `capacity` (at most QT_MAX_BATCH) slots of `bufferSize` bytes each.
    public init(capacity: Int, bufferSize: Int) {
        precondition(capacity >= 1 && capacity <= Int(QT_MAX_BATCH))
        self.capacity = capacity
        self.bufferSize = bufferSize
        memory = .allocate(byteCount: capacity * bufferSize, alignment: 64)
        slots = .allocate(capacity: capacity)
        for index in 0..<capacity {
            slots[index] = qt_datagram()
            slots[index].buffer = memory + index * bufferSize
            slots[index].capacity = UInt32(bufferSize)
        }
    }

    deinit {
        memory.deallocate()
        slots.deallocate()
    }

    /// The buffer of slot `index` (its start, whatever `prepare` last sent from).
    @inline(__always)
    public func buffer(_ index: Int) -> UnsafeMutableRawPointer { memory + index * bufferSize }

    /// The source (after receive) or destination (before send) of slot `index`.
    @inline(__always)
    public func endpoint(_ index: Int) -> UDPEndpoint {
        UDPEndpoint(storage: slots[index].addr, length: slots[index].addr_length)
    }

    /// Sets slot `index` to send `length` bytes of its buffer, from `offset` bytes into it, to `endpoint`.
    @inline(__always)
    public func prepare(_ index: Int, offset: Int = 0, length: Int, to endpoint: UDPEndpoint) {
        slots[index].buffer = buffer(index) + offset
        slots[index].length = UInt32(length)
        slots[index].addr = endpoint.storage
        slots[index].addr_length = endpoint.length
    }
}
