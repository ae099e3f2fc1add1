/// The `struct virtio_net_hdr` (10 bytes) that precedes every packet read from or written
/// to a TUN queue opened with `IFF_VNET_HDR` (linux/virtio_net.h).
///
/// It tells whether the packet still needs its transport checksum (`needsChecksum`:
/// the checksum field holds the pseudo-header sum, and the sum over `checksumStart...`
/// goes at `checksumStart + checksumOffset`) and whether it is a super-packet to be
/// cut into `segmentSize`-byte segments (`gsoType`). Fields are in the machine's byte
/// order (legacy virtio, what TUN uses unless told otherwise).
public struct VirtioNetHeader: Equatable, Sendable {
    /// Bytes the header takes in front of a packet (`TUNSETVNETHDRSZ`).
    public static let size = 10
    /// `flags`: the transport checksum is partial (`VIRTIO_NET_HDR_F_NEEDS_CSUM`).
    public static let needsChecksum: UInt8 = 1

    /// `gso_type` values (`VIRTIO_NET_HDR_GSO_*`); `ecn` is a bit added to the others.
    public enum GSO {
        public static let none: UInt8 = 0
        public static let tcpv4: UInt8 = 1
        public static let tcpv6: UInt8 = 4
        public static let udpL4: UInt8 = 5
        public static let ecn: UInt8 = 0x80
    }

    public var flags: UInt8
    public var gsoType: UInt8
    /// Bytes of IP and transport headers (a hint: the packet code computes its own).
    public var headerLength: UInt16
    /// Payload bytes per segment of a super-packet.
    public var segmentSize: UInt16
    public var checksumStart: UInt16
    public var checksumOffset: UInt16

    public init(flags: UInt8 = 0, gsoType: UInt8 = GSO.none, headerLength: UInt16 = 0, segmentSize: UInt16 = 0,
                checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.segmentSize = segmentSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// Reads a header from `size` bytes at `bytes`.
    @inlinable
    public init(from bytes: UnsafeRawPointer) {
        flags = bytes.load(fromByteOffset: 0, as: UInt8.self)
        gsoType = bytes.load(fromByteOffset: 1, as: UInt8.self)
        headerLength = bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self)
        segmentSize = bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self)
        checksumStart = bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self)
        checksumOffset = bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self)
    }

    /// Writes the header into `size` bytes at `bytes`.
    @inlinable
    public func write(to bytes: UnsafeMutableRawPointer) {
        bytes.storeBytes(of: flags, toByteOffset: 0, as: UInt8.self)
        bytes.storeBytes(of: gsoType, toByteOffset: 1, as: UInt8.self)
        bytes.storeBytes(of: headerLength, toByteOffset: 2, as: UInt16.self)
        bytes.storeBytes(of: segmentSize, toByteOffset: 4, as: UInt16.self)
        bytes.storeBytes(of: checksumStart, toByteOffset: 6, as: UInt16.self)
        bytes.storeBytes(of: checksumOffset, toByteOffset: 8, as: UInt16.self)
    }
}
