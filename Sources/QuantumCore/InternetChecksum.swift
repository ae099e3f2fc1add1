/// The Internet checksum (RFC 1071) of IPv4 headers and TCP/UDP segments.
///
/// Sums are ones' complement sums of big-endian 16-bit words, folded to 16 bits and
/// returned as numbers (write them with `storeBigEndian`). The data is summed four
/// bytes at a time in the machine's byte order and swapped once at the end, which the
/// ones' complement sum allows (RFC 1071 §2(B)).
public enum InternetChecksum {
    /// The folded ones' complement sum of `count` bytes at `bytes`, plus `initial`.
    /// A range that continues another must start at an even offset of the whole.
    @inlinable
    public static func sum(_ bytes: UnsafeRawPointer, count: Int, adding initial: UInt16 = 0) -> UInt16 {
        // 32-bit words into a 64-bit sum: no carries to fold until the end, and a loop
        // the compiler vectorizes.
        var accumulator: UInt64 = 0
        let words = count / 4
        var index = 0
        while index < words {
            accumulator &+= UInt64(bytes.loadUnaligned(fromByteOffset: index &* 4, as: UInt32.self))
            index &+= 1
        }
        var offset = words * 4
        if offset + 2 <= count {
            accumulator &+= UInt64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            offset += 2
        }
        if offset < count {
            // The odd last byte is the high byte of a big-endian word padded with zero.
            accumulator &+= UInt64(UInt16(bigEndian: UInt16(bytes.load(fromByteOffset: offset, as: UInt8.self)) << 8))
        }
        let native = fold(accumulator)
        return add(UInt16(bigEndian: native), initial)
    }

    /// The ones' complement sum of two folded sums.
    @inlinable
    public static func add(_ a: UInt16, _ b: UInt16) -> UInt16 {
        UInt16(truncatingIfNeeded: fold(UInt64(a) &+ UInt64(b)))
    }

    /// The sum of the IPv4 pseudo-header of a TCP or UDP segment: addresses as read from the
    /// packet (big-endian numbers), protocol number and segment length.
    @inlinable
    public static func pseudoHeaderSum(source: UInt32, destination: UInt32, protocol number: UInt8,
                                       length: Int) -> UInt16 {
        let words = UInt64(source >> 16) &+ UInt64(source & 0xFFFF) &+ UInt64(destination >> 16)
            &+ UInt64(destination & 0xFFFF) &+ UInt64(number) &+ UInt64(length)
        return UInt16(truncatingIfNeeded: fold(words))
    }

    @inlinable
    static func fold(_ value: UInt64) -> UInt16 {
        var value = value
        while value >> 16 != 0 { value = (value & 0xFFFF) &+ (value >> 16) }
        return UInt16(truncatingIfNeeded: value)
    }
}

/// Big-endian field access for the packet code (headers are read and written in place).
extension UnsafeRawPointer {
    @inlinable
    func bigEndian16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inlinable
    func bigEndian32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}

extension UnsafeMutableRawPointer {
    @inlinable
    func storeBigEndian(_ value: UInt16, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inlinable
    func storeBigEndian(_ value: UInt32, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }
}
