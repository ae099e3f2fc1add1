/// Turns what a TUN queue with `IFF_VNET_HDR` hands over into packets the tunnel can
/// send: completes a partial checksum, and cuts a TCP (TSO) or UDP (USO) super-packet
/// into `segmentSize`-byte segments, each a whole IPv4 packet with its own headers and
/// checksums — what the kernel's own segmentation would have put on the wire.
///
/// Nothing here trusts the header: lengths are taken from the IP and transport headers
/// and checked against what was read; anything inconsistent is refused.
public enum TCPSegmentation {
    /// Why a packet from the device was refused.
    public enum Refusal: Error, Equatable, Sendable {
        /// Checksum start/offset outside the packet.
        case checksumOutOfRange
        /// A super-packet that is not a well-formed, unfragmented IPv4 TCP/UDP packet whose
        /// length matches what was read, or an unknown segmentation type.
        case malformedSuperPacket
        /// Segment size 0, or a packet or segments larger than `maximumPacket`.
        case badSegmentSize
    }

    /// How to cut one packet: `count` segments of `segmentSize` payload bytes (the last
    /// may be shorter), each behind a copy of the first `headerLength` bytes.
    public struct Plan: Equatable, Sendable {
        /// Segments the packet yields (1 for an ordinary packet).
        public let count: Int
        /// IP plus transport header bytes (0 for an ordinary packet, which is copied whole).
        public let headerLength: Int
        /// IP header bytes.
        public let ipHeaderLength: Int
        /// Payload bytes per segment.
        public let segmentSize: Int
        /// Whether the segments are UDP datagrams (USO) rather than TCP segments.
        public let udp: Bool

        @usableFromInline
        init(count: Int, headerLength: Int, ipHeaderLength: Int, segmentSize: Int, udp: Bool) {
            self.count = count
            self.headerLength = headerLength
            self.ipHeaderLength = ipHeaderLength
            self.segmentSize = segmentSize
            self.udp = udp
        }

        /// Payload bytes of segment `index`.
        @inlinable
        public func payloadLength(_ index: Int, of packetLength: Int) -> Int {
            min(segmentSize, packetLength - headerLength - index * segmentSize)
        }
    }

    /// Checks one packet read from the device (`header` is its virtio-net header) and, for an
    /// ordinary packet with a partial checksum, completes the checksum in place.
    /// - Parameter maximumPacket: the largest segment the tunnel carries (the inner MTU).
    /// - Returns: how to cut it; `count` 1 and `headerLength` 0 mean "send it as it is".
    @inlinable
    public static func plan(_ header: VirtioNetHeader, packet: UnsafeMutableRawBufferPointer,
                            maximumPacket: Int) -> Result<Plan, Refusal> {
        let bytes = packet.baseAddress!
        switch header.gsoType & ~VirtioNetHeader.GSO.ecn {
        case VirtioNetHeader.GSO.none:
            guard packet.count <= maximumPacket else { return .failure(.badSegmentSize) }
            if header.flags & VirtioNetHeader.needsChecksum != 0 {
                let start = Int(header.checksumStart), field = start + Int(header.checksumOffset)
                guard field + 2 <= packet.count else { return .failure(.checksumOutOfRange) }
                // The field holds the pseudo-header sum; the sum over the rest completes it.
                let sum = InternetChecksum.sum(bytes + start, count: packet.count - start)
                bytes.storeBigEndian(~sum == 0 ? 0xFFFF : ~sum, at: field)
            }
            return .success(Plan(count: 1, headerLength: 0, ipHeaderLength: 0, segmentSize: packet.count, udp: false))
        case VirtioNetHeader.GSO.tcpv4, VirtioNetHeader.GSO.udpL4:
            let udp = header.gsoType & ~VirtioNetHeader.GSO.ecn == VirtioNetHeader.GSO.udpL4
            guard packet.count >= 20, packet[0] >> 4 == 4 else { return .failure(.malformedSuperPacket) }
            let ipLength = Int(packet[0] & 0x0F) * 4
            let fragment = UnsafeRawPointer(bytes).bigEndian16(at: 6) & 0x3FFF
            guard ipLength >= 20, packet[9] == (udp ? 17 : 6), fragment == 0,
                  Int(UnsafeRawPointer(bytes).bigEndian16(at: 2)) == packet.count,
                  packet.count >= ipLength + (udp ? 8 : 20) else { return .failure(.malformedSuperPacket) }
            let transportLength = udp ? 8 : Int(packet[ipLength + 12] >> 4) * 4
            let headerLength = ipLength + transportLength
            guard transportLength >= (udp ? 8 : 20), headerLength < packet.count else {
                return .failure(.malformedSuperPacket)
            }
            let segmentSize = Int(header.segmentSize)
            guard segmentSize > 0, headerLength + segmentSize <= maximumPacket else { return .failure(.badSegmentSize) }
            let payload = packet.count - headerLength
            return .success(Plan(count: (payload + segmentSize - 1) / segmentSize, headerLength: headerLength,
                                 ipHeaderLength: ipLength, segmentSize: segmentSize, udp: udp))
        default:
            return .failure(.malformedSuperPacket)
        }
    }

    /// Writes segment `index` of `packet` (planned by `plan`) as a whole IPv4 packet at `out`.
    /// - Returns: its length.
    @inlinable
    public static func writeSegment(_ index: Int, of plan: Plan, from packet: UnsafeRawBufferPointer,
                                    into out: UnsafeMutableRawPointer) -> Int {
        let source = packet.baseAddress!
        guard plan.headerLength > 0 else {
            out.copyMemory(from: source, byteCount: packet.count)
            return packet.count
        }
        let payload = plan.payloadLength(index, of: packet.count)
        let length = plan.headerLength + payload
        out.copyMemory(from: source, byteCount: plan.headerLength)
        (out + plan.headerLength).copyMemory(from: source + plan.headerLength + index * plan.segmentSize,
                                             byteCount: payload)
        let ip = plan.ipHeaderLength
        // IP: total length, identification +1 per segment, header checksum.
        out.storeBigEndian(UInt16(length), at: 2)
        out.storeBigEndian(source.bigEndian16(at: 4) &+ UInt16(truncatingIfNeeded: index), at: 4)
        out.storeBigEndian(UInt16(0), at: 10)
        out.storeBigEndian(~InternetChecksum.sum(out, count: ip), at: 10)
        let transport = out + ip
        let checksumField: Int
        if plan.udp {
            transport.storeBigEndian(UInt16(length - ip), at: 4)
            checksumField = 6
        } else {
            transport.storeBigEndian(source.bigEndian32(at: ip + 4) &+ UInt32(truncatingIfNeeded: index * plan.segmentSize),
                                     at: 4)
            var flags = transport.load(fromByteOffset: 13, as: UInt8.self)
            if index != plan.count - 1 { flags &= ~(TCPFlags.fin | TCPFlags.psh) }
            if index != 0 { flags &= ~TCPFlags.cwr }
            transport.storeBytes(of: flags, toByteOffset: 13, as: UInt8.self)
            checksumField = 16
        }
        transport.storeBigEndian(UInt16(0), at: checksumField)
        let pseudo = InternetChecksum.pseudoHeaderSum(source: source.bigEndian32(at: 12), destination: source.bigEndian32(at: 16),
                                                      protocol: plan.udp ? 17 : 6, length: length - ip)
        let sum = ~InternetChecksum.sum(transport, count: length - ip, adding: pseudo)
        transport.storeBigEndian(sum == 0 && plan.udp ? 0xFFFF : sum, at: checksumField)
        return length
    }

    /// Plans and writes every segment of one packet, `stride` bytes apart from `out` (the
    /// whole operation in one call, for tests and benchmarks).
    /// - Returns: how many segments were written (each one's length is in its IP header),
    ///   or why the packet was refused.
    public static func split(_ header: VirtioNetHeader, packet: UnsafeMutableRawBufferPointer, maximumPacket: Int,
                             into out: UnsafeMutableRawPointer, stride: Int) -> Result<Int, Refusal> {
        plan(header, packet: packet, maximumPacket: maximumPacket).map { plan in
            for index in 0..<plan.count {
                _ = writeSegment(index, of: plan, from: UnsafeRawBufferPointer(packet), into: out + index * stride)
            }
            return plan.count
        }
    }
}

/// TCP header flag bits (byte 13).
public enum TCPFlags {
    public static let fin: UInt8 = 0x01
    public static let syn: UInt8 = 0x02
    public static let rst: UInt8 = 0x04
    public static let psh: UInt8 = 0x08
    public static let ack: UInt8 = 0x10
    public static let urg: UInt8 = 0x20
    public static let ece: UInt8 = 0x40
    public static let cwr: UInt8 = 0x80
}
