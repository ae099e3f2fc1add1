#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 address held as a host-order 32-bit integer: the unit of the private network.
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The address in host byte order (`10.99.0.1` is `0x0A63_0001`).
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    /// Parses dotted-quad notation (`10.99.0.1`); `nil` for anything else.
    /// Each of the four fields is one to three ASCII digits worth at most 255. Reads the
    /// UTF-8 bytes once, without allocating (a map of 10,000 nodes parses some 20,000).
    public init?(_ text: some StringProtocol) {
        var address: UInt32 = 0
        var field: UInt32 = 0
        var digits = 0
        var fields = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, fields < 3 else { return nil }
                address = address << 8 | field
                (field, digits, fields) = (0, 0, fields + 1)
            } else {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 3 else { return nil }
                field = field * 10 + UInt32(byte - UInt8(ascii: "0"))
                guard field <= 255 else { return nil }
                digits += 1
            }
        }
        guard digits > 0, fields == 3 else { return nil }
        value = address << 8 | field
    }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }

    /// True for 127.0.0.0/8.
    public var isLoopback: Bool { value >> 24 == 127 }
    /// True for 169.254.0.0/16.
    public var isLinkLocal: Bool { value >> 16 == 0xA9FE }
    /// True for 0.0.0.0.
    public var isUnspecified: Bool { value == 0 }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }
}

/// An IPv6 address as 16 network-order bytes.
public struct IPv6Address: Hashable, Sendable, CustomStringConvertible {
    /// The address bytes in network order.
    public var bytes: [UInt8]

    /// Wraps 16 network-order bytes; `nil` for any other count.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses any textual IPv6 form accepted by `inet_pton` (`fd00::1`, `::ffff:1.2.3.4`).
    public init?(_ text: some StringProtocol) {
        var raw = in6_addr()
        let ok = String(text).withCString { inet_pton(AF_INET6, $0, &raw) } == 1
        guard ok else { return nil }
        bytes = withUnsafeBytes(of: &raw) { Array($0) }
    }

    public var description: String {
        var raw = in6_addr()
        withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: bytes) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
        let text = buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
        return String(decoding: text, as: UTF8.self)
    }

    /// True for `::1`.
    public var isLoopback: Bool { bytes == [UInt8](repeating: 0, count: 15) + [1] }
    /// True for fe80::/10.
    public var isLinkLocal: Bool { bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 }
    /// True for `::`.
    public var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }
}

/// An IPv4 network: an address with its prefix length, host bits clear.
public struct IPv4Prefix: Hashable, Sendable, CustomStringConvertible {
    /// The first address of the network.
    public let network: IPv4Address
    /// The prefix length, 0 to 32.
    public let length: Int

    /// Errors from parsing `a.b.c.d/n`.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case hostBitsSet(String, suggested: String)

        public var description: String {
            switch self {
            case .malformed(let text): "'\(text)' is not an IPv4 prefix like 10.99.0.0/16"
            case .hostBitsSet(let text, let suggested): "'\(text)' has host bits set (did you mean \(suggested)?)"
            }
        }
    }

    /// Builds a prefix; the address must have no bits set past `length`.
    public init(network: IPv4Address, length: Int) throws {
        precondition((0...32).contains(length), "prefix length out of range")
        let masked = IPv4Address(network.value & IPv4Prefix.mask(length))
        guard masked == network else {
            throw ParseError.hostBitsSet("\(network)/\(length)", suggested: "\(masked)/\(length)")
        }
        self.network = network
        self.length = length
    }

    /// Parses `10.99.0.0/16`.
    public init(parsing text: String) throws {
        let pieces = text.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count == 2, let address = IPv4Address(pieces[0]),
              pieces[1].allSatisfy({ $0.isASCII && $0.isNumber }), let length = Int(pieces[1]),
              (0...32).contains(length) else { throw ParseError.malformed(text) }
        try self.init(network: address, length: length)
    }

    /// The netmask for a prefix length, host order.
    public static func mask(_ length: Int) -> UInt32 {
        length == 0 ? 0 : UInt32.max << UInt32(32 - length)
    }

    public var mask: UInt32 { IPv4Prefix.mask(length) }
    /// The last address of the network (its broadcast address for length < 31).
    public var last: IPv4Address { IPv4Address(network.value | ~mask) }
    /// How many addresses the prefix covers.
    public var size: UInt64 { UInt64(1) << UInt64(32 - length) }

    public func contains(_ address: IPv4Address) -> Bool { address.value & mask == network.value }
    public func contains(_ other: IPv4Prefix) -> Bool { other.length >= length && contains(other.network) }
    public func overlaps(_ other: IPv4Prefix) -> Bool { contains(other.network) || other.contains(network) }

    public var description: String { "\(network)/\(length)" }
}
