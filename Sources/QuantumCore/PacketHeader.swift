/// Reads the addresses of an inner IP packet in place, without copying it.
///
/// The data path calls these on every packet; they only look at the first bytes.
public enum IPPacket {
    /// The IP version in the first nibble (4 or 6), or 0 for an empty packet.
    @inlinable
    public static func version(_ packet: UnsafeRawBufferPointer) -> UInt8 {
        packet.isEmpty ? 0 : packet[0] >> 4
    }

    /// The destination of an IPv4 packet, or `nil` if the packet is not a whole IPv4 header.
    @inlinable
    public static func ipv4Destination(_ packet: UnsafeRawBufferPointer) -> IPv4Address? {
        guard packet.count >= 20, packet[0] >> 4 == 4 else { return nil }
        return IPv4Address(readBigEndian(packet, at: 16))
    }

    /// The source of an IPv4 packet, or `nil` if the packet is not a whole IPv4 header.
    @inlinable
    public static func ipv4Source(_ packet: UnsafeRawBufferPointer) -> IPv4Address? {
        guard packet.count >= 20, packet[0] >> 4 == 4 else { return nil }
        return IPv4Address(readBigEndian(packet, at: 12))
    }

    @inlinable
    static func readBigEndian(_ packet: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        UInt32(packet[offset]) << 24 | UInt32(packet[offset + 1]) << 16
            | UInt32(packet[offset + 2]) << 8 | UInt32(packet[offset + 3])
    }
}
