import CQuantumLinux
import Glibc
import QuantumCore

/// A UDP peer address in the form the socket uses: `sockaddr_in` for an IPv4 socket,
/// `sockaddr_in6` (IPv4 addresses mapped into `::ffff:0:0/96`) for a dual-stack IPv6 socket.
///
/// A plain value, compared byte for byte, so the data path can check "did this
/// packet come from where we think the peer is" without allocating.
public struct UDPEndpoint: Equatable, Sendable, CustomStringConvertible {
    /// The raw socket address.
    public var storage: sockaddr_in6
    /// How many bytes of `storage` are meaningful.
    public var length: socklen_t

    /// Wraps a raw socket address as received by `recvmmsg`.
    public init(storage: sockaddr_in6, length: socklen_t) {
        self.storage = storage
        self.length = length
    }

    /// An IPv4 endpoint, mapped into IPv6 when the socket is IPv6.
    public init(_ address: IPv4Address, port: UInt16, family: UDPSocket.Family) {
        storage = sockaddr_in6()
        switch family {
        case .ipv4:
            var v4 = sockaddr_in()
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            v4.sin_addr.s_addr = address.value.bigEndian
            withUnsafeMutableBytes(of: &storage) { raw in
                withUnsafeBytes(of: v4) { raw.copyMemory(from: $0) }
            }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        case .ipv6:
            storage.sin6_family = sa_family_t(AF_INET6)
            storage.sin6_port = port.bigEndian
            let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
                                   UInt8(address.value >> 24), UInt8(address.value >> 16 & 0xff),
                                   UInt8(address.value >> 8 & 0xff), UInt8(address.value & 0xff)]
            withUnsafeMutableBytes(of: &storage.sin6_addr) { $0.copyBytes(from: mapped) }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
    }

    /// An IPv6 endpoint (only meaningful for an IPv6 socket).
    public init(_ address: IPv6Address, port: UInt16) {
        storage = sockaddr_in6()
        storage.sin6_family = sa_family_t(AF_INET6)
        storage.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &storage.sin6_addr) { $0.copyBytes(from: address.bytes) }
        length = socklen_t(MemoryLayout<sockaddr_in6>.size)
    }

    public static func == (lhs: UDPEndpoint, rhs: UDPEndpoint) -> Bool {
        guard lhs.length == rhs.length else { return false }
        return withUnsafeBytes(of: lhs.storage) { a in
            withUnsafeBytes(of: rhs.storage) { b in memcmp(a.baseAddress!, b.baseAddress!, Int(lhs.length)) == 0 }
        }
    }

    /// The port, host order.
    public var port: UInt16 { UInt16(bigEndian: storage.sin6_port) }

    public var description: String {
        if Int32(storage.sin6_family) == AF_INET {
            let v4 = withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in.self) }
            return "\(IPv4Address(UInt32(bigEndian: v4.sin_addr.s_addr))):\(UInt16(bigEndian: v4.sin_port))"
        }
        let bytes = withUnsafeBytes(of: storage.sin6_addr) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
            let v4 = IPv4Address(UInt32(bytes[12]) << 24 | UInt32(bytes[13]) << 16 | UInt32(bytes[14]) << 8 | UInt32(bytes[15]))
            return "\(v4):\(port)"
        }
        return "[\(IPv6Address(bytes: bytes)!)]:\(port)"
    }
}
