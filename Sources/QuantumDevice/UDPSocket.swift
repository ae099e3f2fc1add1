import CQuantumLinux
import Glibc
import QuantumCore
import Synchronization

/// One non-blocking UDP socket of the node's port; each worker owns one, all
/// bound to the same port with `SO_REUSEPORT` so the kernel spreads peers across them.
///
/// Offloads: a batch slot with a segment size goes out as one UDP GSO message (`UDP_SEGMENT`)
/// while `sendOffload` holds, and as separate datagrams otherwise; after
/// `enableReceiveOffload()` the kernel may coalesce received datagrams into one slot (`UDP_GRO`).
/// Copies of one socket value share the send offload state.
public struct UDPSocket: Sendable {
    /// The address family of a socket: an IPv6 socket is dual-stack unless IPv4 is disabled.
    public enum Family: Sendable {
        case ipv4, ipv6
    }

    /// The file descriptor, for polling.
    public let fileDescriptor: Int32
    /// Whether endpoints for this socket are `sockaddr_in` or `sockaddr_in6`.
    public let family: Family
    private let segmentation: SegmentationState

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
        segmentation = SegmentationState(supported: qt_udp_segmentation_supported(fd) == 1)
    }

    /// Takes over an open, bound, non-blocking socket of `family` (e.g. one handed over by
    /// the process this one replaces). Its `UDP_GRO` setting stays as it was (see `receiveOffload`).
    public init(adopting fileDescriptor: Int32, family: Family) {
        self.fileDescriptor = fileDescriptor
        self.family = family
        segmentation = SegmentationState(supported: qt_udp_segmentation_supported(fileDescriptor) == 1)
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

    /// What one batch send did.
    public struct SendResult: Equatable, Sendable {
        /// Slots (messages) whose datagrams the kernel all accepted; the others were refused
        /// (unreachable, out of buffers, beyond the GSO limits...).
        public var accepted = 0
        /// Datagrams on the wire the kernel accepted: a GSO slot counts each segment.
        public var datagramsAccepted = 0
        /// The errno of the last refusal (0 if none); `EMSGSIZE` for a slot beyond the GSO limits.
        public var lastError: Int32 = 0
        /// GSO slots the kernel refused as GSO and that went out as separate datagrams instead
        /// (at most one per socket: the first turns `sendOffload` off).
        public var fallbacks = 0

        /// A result of the given counts.
        public init(accepted: Int = 0, datagramsAccepted: Int = 0, lastError: Int32 = 0, fallbacks: Int = 0) {
            self.accepted = accepted
            self.datagramsAccepted = datagramsAccepted
            self.lastError = lastError
            self.fallbacks = fallbacks
        }
    }

    /// Sends the first `count` slots of the batch (at most its capacity), as few system calls
    /// as it can (sendmmsg).
    ///
    /// A slot prepared with a segment size and more than one segment is a GSO message: at most
    /// `UDPSocket.maximumSegments` segments and `UDPSocket.maximumSegmentedLength` bytes, or it
    /// is refused (`EMSGSIZE`). While `sendOffload` holds it goes out with `UDP_SEGMENT`; when
    /// the kernel refuses that (EIO, EINVAL, EOPNOTSUPP or ENOPROTOOPT, e.g. a route without
    /// checksum offload) its segments are resent as separate datagrams straight from the buffer
    /// and, if any of them was accepted, `sendOffload` turns off for good and the result counts
    /// one fallback. Without send offload, GSO slots always go out as separate datagrams.
    @inline(__always)
    @discardableResult
    public func send(_ batch: DatagramBatch, count: Int) -> SendResult {
        guard count > 0 else { return SendResult() }
        var enabled: Int32 = segmentation.enabled.load(ordering: .relaxed) ? 1 : 0
        var result = qt_send_result()
        qt_send_batch(fileDescriptor, batch.slots, UInt32(min(count, batch.capacity)), &enabled, &result)
        if result.fallbacks > 0 { segmentation.enabled.store(false, ordering: .relaxed) }
        return SendResult(accepted: Int(result.accepted), datagramsAccepted: Int(result.datagrams_accepted),
                          lastError: result.last_error, fallbacks: Int(result.fallbacks))
    }

    /// Most segments one GSO slot may carry (the kernel's `UDP_MAX_SEGMENTS`).
    public static let maximumSegments = Int(QT_MAX_SEGMENTS)
    /// Largest total length of one GSO slot: 65,507 bytes (the largest UDP payload over IPv4).
    public static let maximumSegmentedLength = Int(QT_MAX_SEGMENTED_LENGTH)

    /// Whether `send` puts GSO slots in one `UDP_SEGMENT` message each: probed when the socket
    /// is opened or adopted (kernel 4.18 and later), off after the kernel refused GSO once
    /// or after `disableSendOffload()`.
    public var sendOffload: Bool { segmentation.enabled.load(ordering: .relaxed) }

    /// Sends GSO slots as separate datagrams from now on (offloads turned off by configuration).
    public func disableSendOffload() {
        segmentation.enabled.store(false, ordering: .relaxed)
    }

    /// Lets the kernel coalesce received datagrams of one flow into one slot (`UDP_GRO`, kernel
    /// 5.0 and later; see `DatagramBatch.segmentSize`). Receive buffers must then hold 65,535
    /// bytes, or coalesced slots arrive truncated. Returns false, changing nothing, where the
    /// kernel does not support it.
    public func enableReceiveOffload() -> Bool {
        qt_udp_set_receive_offload(fileDescriptor, 1) == 0
    }

    /// Turns `UDP_GRO` off again (e.g. on a socket adopted from a process that had it on).
    /// Returns false when the kernel refused (a kernel without UDP_GRO never had it on).
    @discardableResult
    public func disableReceiveOffload() -> Bool {
        qt_udp_set_receive_offload(fileDescriptor, 0) == 0
    }

    /// Whether `UDP_GRO` is on for this socket, as the kernel says (false where it cannot say).
    public var receiveOffload: Bool { qt_udp_receive_offload(fileDescriptor) == 1 }

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

/// Whether a socket still sends with UDP GSO; one instance per socket, shared by the copies
/// of its `UDPSocket` value (the worker sending on it is the only writer).
private final class SegmentationState: Sendable {
    let enabled: Atomic<Bool>

    init(supported: Bool) {
        enabled = Atomic(supported)
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
/// The buffers are one anonymous mapping: a page costs memory only once a datagram touched it,
/// so slots may be large (65,535 bytes and headroom for GSO and GRO) at no idle cost.
public final class DatagramBatch: @unchecked Sendable {
    /// The C datagram descriptors handed to recvmmsg/sendmmsg.
    public let slots: UnsafeMutablePointer<qt_datagram>
    /// How many slots there are.
    public let capacity: Int
    /// Bytes each slot's buffer holds.
    public let bufferSize: Int
    private let memory: UnsafeMutableRawPointer
    private let mappedSize: Int

    /// Allocates `capacity` (at most QT_MAX_BATCH) slots of `bufferSize` bytes each.
    public init(capacity: Int, bufferSize: Int) {
        precondition(capacity >= 1 && capacity <= Int(QT_MAX_BATCH))
        precondition(bufferSize >= 1 && bufferSize <= Int(UInt32.max))
        self.capacity = capacity
        self.bufferSize = bufferSize
        mappedSize = capacity * bufferSize
        guard let mapping = mmap(nil, mappedSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapping != UnsafeMutableRawPointer(bitPattern: -1) else {  // MAP_FAILED
            fatalError("\(SystemError("map \(mappedSize) bytes of datagram buffers", code: errno))")
        }
        // Kept to small pages where the kernel would hand out huge ones unasked, so touching
        // one slot does not make megabytes resident.
        _ = madvise(mapping, mappedSize, MADV_NOHUGEPAGE)
        memory = mapping
        slots = .allocate(capacity: capacity)
        for index in 0..<capacity {
            slots[index] = qt_datagram()
            slots[index].buffer = memory + index * bufferSize
            slots[index].capacity = UInt32(bufferSize)
        }
    }

    deinit {
        munmap(memory, mappedSize)
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

    /// After a receive: the size of the datagrams the kernel coalesced into slot `index` (the
    /// last may be shorter; the slot's length is their total), or 0 when it holds one datagram.
    /// Only a socket with `UDPSocket.enableReceiveOffload()` gets coalesced slots.
    @inline(__always)
    public func segmentSize(_ index: Int) -> Int { Int(slots[index].segment_size) }

    /// Sets slot `index` to send `length` bytes of its buffer, from `offset` bytes into it, to `endpoint`
    /// (a later receive into the slot fills it from there on).
    /// With `segmentSize` > 0 and `length` > `segmentSize`, the bytes are consecutive datagrams of
    /// `segmentSize` bytes (the last may be shorter) sent as one GSO message — see `UDPSocket.send`.
    @inline(__always)
    public func prepare(_ index: Int, offset: Int = 0, length: Int, to endpoint: UDPEndpoint, segmentSize: Int = 0) {
        slots[index].buffer = buffer(index) + offset
        slots[index].capacity = UInt32(bufferSize - offset)
        slots[index].length = UInt32(length)
        slots[index].segment_size = UInt16(segmentSize)
        slots[index].addr = endpoint.storage
        slots[index].addr_length = endpoint.length
    }
}
