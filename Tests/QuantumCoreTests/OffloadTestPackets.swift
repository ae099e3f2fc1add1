import QuantumCore

/// Packets for the offload tests, built and checked byte by byte without the code under test:
/// checksums here are the plain RFC 1071 loop over big-endian words.
enum OffloadTestPackets {
    static let source: [UInt8] = [10, 99, 0, 1]
    static let destination: [UInt8] = [10, 99, 0, 2]

    /// The ones' complement sum of `bytes` as big-endian 16-bit words (odd tail padded), folded.
    static func referenceSum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var index = 0
        while index < bytes.count {
            let high = UInt32(bytes[index]) << 8
            let low = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
            sum += high | low
            sum = (sum & 0xFFFF) + (sum >> 16)
            index += 2
        }
        return UInt16(sum)
    }

    /// The IPv4 pseudo-header of a transport segment of `length` bytes.
    static func pseudoHeader(_ packet: [UInt8], protocol number: UInt8, length: Int) -> [UInt8] {
        Array(packet[12..<20]) + [0, number, UInt8(length >> 8), UInt8(length & 0xFF)]
    }

    /// Whether the IPv4 header checksum of `packet` verifies.
    static func ipChecksumValid(_ packet: [UInt8]) -> Bool {
        referenceSum(Array(packet[0..<Int(packet[0] & 0x0F) * 4])) == 0xFFFF
    }

    /// Whether the TCP (6) or UDP (17) checksum of `packet` verifies.
    static func transportChecksumValid(_ packet: [UInt8]) -> Bool {
        let ip = Int(packet[0] & 0x0F) * 4
        let segment = Array(packet[ip...])
        return referenceSum(pseudoHeader(packet, protocol: packet[9], length: segment.count) + segment) == 0xFFFF
    }

    static func bigEndian16(_ value: Int) -> [UInt8] { [UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)] }
    static func bigEndian32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    /// Payload bytes that differ from position to position (so misplaced copies show).
    static func payload(_ count: Int, seed: Int = 0) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 31) &+ ($0 >> 8) &+ seed) }
    }

    /// A whole IPv4 TCP packet with correct checksums (unless `checksum` is given).
    static func tcp(sourcePort: Int = 40_000, destinationPort: Int = 5201, sequence: UInt32, ack: UInt32 = 0x0102_0304,
                    flags: UInt8 = TCPFlags.ack, window: Int = 501, options: [UInt8] = timestampOption,
                    payload: [UInt8], id: Int = 0x1234, ipOptions: [UInt8] = [], checksum: UInt16? = nil,
                    from source: [UInt8] = source, to destination: [UInt8] = destination) -> [UInt8] {
        let tcpLength = 20 + options.count
        var tcp = bigEndian16(sourcePort) + bigEndian16(destinationPort) + bigEndian32(sequence) + bigEndian32(ack)
        tcp += [UInt8(tcpLength / 4) << 4, flags] + bigEndian16(window) + [0, 0, 0, 0] + options + payload
        var packet = ip(protocol: 6, id: id, options: ipOptions, length: tcp.count, from: source, to: destination) + tcp
        let ipLength = 20 + ipOptions.count
        let sum = checksum ?? ~referenceSum(pseudoHeader(packet, protocol: 6, length: tcp.count) + tcp)
        packet[ipLength + 16] = UInt8(sum >> 8)
        packet[ipLength + 17] = UInt8(sum & 0xFF)
        return packet
    }

    /// A whole IPv4 UDP packet with a correct checksum.
    static func udp(payload: [UInt8], id: Int = 0x2222) -> [UInt8] {
        var udp = bigEndian16(4000) + bigEndian16(5000) + bigEndian16(8 + payload.count) + [0, 0] + payload
        let packet = ip(protocol: 17, id: id, options: [], length: udp.count, from: source, to: destination)
        var sum = ~referenceSum(pseudoHeader(packet, protocol: 17, length: udp.count) + udp)
        if sum == 0 { sum = 0xFFFF }
        udp[6] = UInt8(sum >> 8)
        udp[7] = UInt8(sum & 0xFF)
        return packet + udp
    }

    /// An IPv4 header (don't fragment, TTL 64) with its checksum.
    static func ip(protocol number: UInt8, id: Int, options: [UInt8], length: Int,
                   from source: [UInt8], to destination: [UInt8]) -> [UInt8] {
        let headerLength = 20 + options.count
        var header: [UInt8] = [0x40 | UInt8(headerLength / 4), 0] + bigEndian16(headerLength + length)
        header += bigEndian16(id & 0xFFFF) + [0x40, 0, 64, number, 0, 0] + source + destination + options
        let sum = ~referenceSum(header)
        header[10] = UInt8(sum >> 8)
        header[11] = UInt8(sum & 0xFF)
        return header
    }

    /// NOP, NOP, timestamps (12 bytes), as Linux sends them.
    static let timestampOption: [UInt8] = [1, 1, 8, 10, 0, 0, 0x10, 0, 0, 0, 0x20, 0]
}
