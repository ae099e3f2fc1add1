// The quantum wire protocol (DESIGN.md §5), shaped after the WireGuard paper.
// All multi-byte integers in headers (indices, counters) are LITTLE-ENDIAN.
// Byte offsets are given as [start, end).
//
// Handshake initiation, type 1, 148 bytes (Noise IK message 1 at [8, 116)):
//   [0]        type = 1
//   [1, 4)     reserved, zero
//   [4, 8)     sender index (u32)
//   [8, 40)    initiator's ephemeral public key
//   [40, 88)   initiator's static public key, encrypted (32 + 16 tag)
//   [88, 116)  TAI64N timestamp, encrypted (12 + 16 tag)
//   [116, 132) mac1
//   [132, 148) mac2
//
// Handshake response, type 2, 110 bytes (Noise IK message 2 at [12, 78)):
//   [0]        type = 2
//   [1, 4)     reserved, zero
//   [4, 8)     sender index (u32)
//   [8, 12)    receiver index (u32) = the initiation's sender index
//   [12, 44)   responder's ephemeral public key
//   [44, 78)   observed endpoint, encrypted (18 + 16 tag): the UDP source address and
//              port the initiation arrived from, as the responder saw it (NAT traversal):
//              [0, 16) IPv6 address (IPv4 mapped into ::ffff:0:0/96), [16, 18) port (u16, little-endian)
//   [78, 94)   mac1
//   [94, 110)  mac2
//
// Cookie reply, type 3, 52 bytes (sent instead of doing Diffie-Hellman when under load):
//   [0]        type = 3
//   [1, 4)     reserved, zero
//   [4, 8)     receiver index (u32) = the sender index of the message it answers
//   [8, 20)    nonce (12 bytes, never repeated under one responder key)
//   [20, 36)   cookie, encrypted with AES-256-GCM
//   [36, 52)   AES-GCM tag
//
// Transport data, type 4, 32 bytes + payload:
//   [0]        type = 4
//   [1]        flags: bit 0 = the payload is an LZ4 block (compression plugin); other bits zero
//   [2, 4)     reserved, zero
//   [4, 8)     receiver index (u32)
//   [8, 16)    counter (u64), also the AES-GCM nonce counter
//   [16, n-16) payload, encrypted in place
//   [n-16, n)  AES-GCM tag
// The 16 header bytes are the AES-GCM additional data, so the flags are authenticated.
//
// Relay envelope, type 5, 12 bytes + one whole inner message (`--relay`, RelayEnvelope.swift):
//   [0]        type = 5
//   [1, 4)     reserved, zero
//   [4, 8)     destination private IPv4 address (network byte order)
//   [8, 12)    source private IPv4 address (network byte order)
//   [12, n)    an initiation, response or transport message, byte for byte as sealed end to
//              end between source and destination (at least `minimumTransportSize` bytes)
// A relay forwards the envelope unchanged to the destination's endpoint, only when this
// node offers itself as relay, the destination is another node of its map, and the
// datagram came from the current endpoint of the source, with which it has a session.
// The envelope itself is not authenticated: the inner message is, end to end.
//
// The Noise prologue is the ASCII text "quantum/1".
// mac1 = HMAC-SHA256(key: SHA256("mac1----" || receiver's static public key),
//                    all bytes before mac1), truncated to 16 bytes.
// mac2 = HMAC-SHA256(key: cookie, all bytes before mac2), truncated to 16 bytes, or
//        zeros when the sender holds no fresh cookie from the receiver. Checked only
//        while the receiver is under load (it then answers a missing or bad mac2 with
//        a cookie reply).
// cookie = HMAC-SHA256(key: receiver's secret of the current 2-minute period,
//                      sender's IP address (16 bytes, IPv4 mapped into IPv6) || port
//                      (u16, big-endian)), truncated to 16 bytes.
// Cookie reply encryption: key = SHA256("cookie--" || replier's static public key),
//   additional data = the mac1 of the message answered.

/// Sizes and fixed values of the quantum wire protocol (layout at the top of WireFormat.swift).
public enum WireFormat {
    /// The Noise prologue, binding handshakes to this protocol version.
    public static let prologue = Array("quantum/1".utf8)
    /// Label hashed with the receiver's static key to derive the mac1 key.
    public static let mac1Label = Array("mac1----".utf8)
    /// Label hashed with the replier's static key to derive the cookie reply key.
    public static let cookieLabel = Array("cookie--".utf8)

    /// Size of a handshake initiation.
    public static let initiationSize = 148
    /// Size of a handshake response.
    public static let responseSize = 110
    /// Size of the observed endpoint in a response's payload (before encryption).
    public static let observedEndpointSize = 18
    /// Size of mac1 and of mac2.
    public static let macSize = 16
    /// Size of a cookie (the mac2 key).
    public static let cookieSize = 16
    /// Size of a cookie reply.
    public static let cookieReplySize = cookieReplyTagOffset + tagSize
    /// Size of the transport header (the AES-GCM additional data).
    public static let transportHeaderSize = 16
    /// Size of the AES-GCM tag after a transport payload.
    public static let tagSize = AESGCMContext.tagSize
    /// Bytes a transport message adds to its payload: header and tag.
    public static let transportOverhead = transportHeaderSize + tagSize
    /// Smallest valid transport message: header and tag around an empty payload (a keepalive).
    public static let minimumTransportSize = transportOverhead

    /// Offset of the sender index in handshake messages.
    static let senderIndexOffset = 4
    /// Offset of the receiver index in responses.
    static let responseReceiverIndexOffset = 8
    /// Where the Noise message starts in an initiation.
    static let initiationNoiseOffset = 8
    /// Where the Noise message starts in a response.
    static let responseNoiseOffset = 12
    /// Offset of mac1 in an initiation (everything before it is covered by mac1).
    static let initiationMAC1Offset = initiationSize - 2 * macSize
    /// Offset of mac1 in a response.
    static let responseMAC1Offset = responseSize - 2 * macSize
    /// Offset of mac2 in an initiation (everything before it is covered by mac2).
    static let initiationMAC2Offset = initiationSize - macSize
    /// Offset of mac2 in a response.
    static let responseMAC2Offset = responseSize - macSize
    /// Offset of the receiver index in a cookie reply.
    static let cookieReplyReceiverIndexOffset = 4
    /// Offset of the nonce in a cookie reply.
    static let cookieReplyNonceOffset = 8
    /// Offset of the encrypted cookie in a cookie reply.
    static let cookieReplyCookieOffset = cookieReplyNonceOffset + AESGCMContext.nonceSize
    /// Offset of the AES-GCM tag in a cookie reply.
    static let cookieReplyTagOffset = cookieReplyCookieOffset + cookieSize
    /// Offset of the flags byte in a transport header.
    public static let transportFlagsOffset = 1
    /// Offset of the receiver index in a transport header.
    static let transportReceiverIndexOffset = 4
    /// Offset of the counter in a transport header.
    static let transportCounterOffset = 8
    /// Size of the relay envelope's header, before the inner message.
    public static let relayHeaderSize = 12
    /// Offset of the destination private address in a relay envelope.
    static let relayDestinationOffset = 4
    /// Offset of the source private address in a relay envelope.
    static let relaySourceOffset = 8
    /// Smallest valid relay envelope: the header around the smallest inner message.
    public static let minimumRelaySize = relayHeaderSize + minimumTransportSize
}

/// The bits of a transport header's flags byte.
public enum TransportFlags {
    /// The payload is the LZ4 block of the inner packet (compression plugin).
    public static let compressed: UInt8 = 0x01
}

/// The first byte of every message.
public enum MessageType: UInt8, Sendable {
    /// Handshake initiation (148 bytes).
    case initiation = 1
    /// Handshake response (110 bytes).
    case response = 2
    /// Cookie reply: what a node under load answers a handshake message without a valid mac2 (52 bytes).
    case cookieReply = 3
    /// Transport data: header, encrypted payload, tag.
    case transport = 4
    /// Relay envelope: two private addresses and one inner message, forwarded by a relay.
    case relayEnvelope = 5

    /// The type of `message`, or nil if it is empty or the type byte is unknown.
    public init?(of message: UnsafeRawBufferPointer) {
        guard let first = message.first else { return nil }
        self.init(rawValue: first)
    }
}

/// Reads fields of a transport message without decrypting it (for routing a
/// received packet to its session). All functions return nil if the message is
/// shorter than `WireFormat.minimumTransportSize` or is not of type transport.
public enum TransportHeader {
    /// The receiver index: the local index of the session that must open the message.
    public static func receiverIndex(_ message: UnsafeRawBufferPointer) -> UInt32? {
        guard isTransport(message) else { return nil }
        return UInt32(littleEndian: message.loadUnaligned(fromByteOffset: WireFormat.transportReceiverIndexOffset, as: UInt32.self))
    }

    /// The message counter (the AES-GCM nonce counter).
    public static func counter(_ message: UnsafeRawBufferPointer) -> UInt64? {
        guard isTransport(message) else { return nil }
        return UInt64(littleEndian: message.loadUnaligned(fromByteOffset: WireFormat.transportCounterOffset, as: UInt64.self))
    }

    /// The plugin flags byte. Only trust it after the message was opened successfully.
    public static func flags(_ message: UnsafeRawBufferPointer) -> UInt8? {
        guard isTransport(message) else { return nil }
        return message[WireFormat.transportFlagsOffset]
    }

    private static func isTransport(_ message: UnsafeRawBufferPointer) -> Bool {
        message.count >= WireFormat.minimumTransportSize && message[0] == MessageType.transport.rawValue
    }
}

/// Reads the routing field of a handshake response before any cryptography, so the
/// receiver can find the initiation it answers.
public enum HandshakeResponse {
    /// The receiver index (the initiator's sender index), or nil if `message` is not a response.
    public static func receiverIndex(_ message: UnsafeRawBufferPointer) -> UInt32? {
        guard message.count == WireFormat.responseSize, message[0] == MessageType.response.rawValue else { return nil }
        return UInt32(littleEndian: message.loadUnaligned(fromByteOffset: WireFormat.responseReceiverIndexOffset, as: UInt32.self))
    }
}
