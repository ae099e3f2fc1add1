import QuantumCore

/// Reads and writes the relay envelope (type 5, layout at the top of WireFormat.swift):
/// the two private addresses in front of an inner message a relay forwards unchanged.
/// Allocation-free; every reader returns nil for a datagram that is not an envelope of
/// at least `WireFormat.minimumRelaySize` bytes.
public enum RelayEnvelope {
    /// The node the inner message is for.
    @inline(__always)
    public static func destination(_ datagram: UnsafeRawBufferPointer) -> IPv4Address? {
        address(datagram, at: WireFormat.relayDestinationOffset)
    }

    /// The node that sealed the inner message (as the sender claims it; the relay checks it).
    @inline(__always)
    public static func source(_ datagram: UnsafeRawBufferPointer) -> IPv4Address? {
        address(datagram, at: WireFormat.relaySourceOffset)
    }

    /// Writes the envelope header for an inner message from `source` to `destination`
    /// into the `WireFormat.relayHeaderSize` bytes at `header`.
    @inline(__always)
    public static func writeHeader(_ header: UnsafeMutableRawPointer, destination: IPv4Address, source: IPv4Address) {
        header.storeBytes(of: UInt32(MessageType.relayEnvelope.rawValue).littleEndian, as: UInt32.self)
        header.storeBytes(of: destination.value.bigEndian, toByteOffset: WireFormat.relayDestinationOffset, as: UInt32.self)
        header.storeBytes(of: source.value.bigEndian, toByteOffset: WireFormat.relaySourceOffset, as: UInt32.self)
    }

    /// `inner` wrapped in an envelope (control thread: handshakes, keepalives, staged packets).
    public static func wrap(_ inner: [UInt8], destination: IPv4Address, source: IPv4Address) -> [UInt8] {
        var datagram = [UInt8](repeating: 0, count: WireFormat.relayHeaderSize)
        datagram.reserveCapacity(WireFormat.relayHeaderSize + inner.count)
        datagram.withUnsafeMutableBytes { writeHeader($0.baseAddress!, destination: destination, source: source) }
        datagram += inner
        return datagram
    }

    @inline(__always)
    private static func address(_ datagram: UnsafeRawBufferPointer, at offset: Int) -> IPv4Address? {
        guard datagram.count >= WireFormat.minimumRelaySize,
              datagram[0] == MessageType.relayEnvelope.rawValue else { return nil }
        return IPv4Address(UInt32(bigEndian: datagram.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    }
}
