// Cookies and mac2 (layout and formulas at the top of WireFormat.swift), after the
// WireGuard paper §5.4.7: a node under load answers a handshake message that lacks a
// valid mac2 with a cookie reply instead of doing Diffie-Hellman, and the sender proves
// it receives at its address by putting that cookie's MAC in the mac2 of its retry.
import CQuantumCrypto
import Crypto

/// HMAC-SHA256 without heap allocation: OpenSSL's SHA-256 states live on the stack
/// (CQuantumCrypto). For what the workers compute per handshake message.
enum StackHMAC {
    /// A 32-byte MAC kept on the stack.
    typealias Output = (UInt64, UInt64, UInt64, UInt64)
    static let zero: Output = (0, 0, 0, 0)

    /// Writes the MAC of `data` under `key` to the 32 bytes at `mac`.
    @inline(__always)
    static func authenticate(_ data: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer,
                             into mac: UnsafeMutableRawPointer) {
        let done = quantum_hmac_sha256(
            key.baseAddress?.assumingMemoryBound(to: UInt8.self), key.count,
            data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count,
            mac.assumingMemoryBound(to: UInt8.self))
        // SHA-256 over memory cannot fail; a failure would be a broken libcrypto.
        precondition(done == 1, "OpenSSL SHA-256 failed")
    }

    /// Whether the `WireFormat.macSize` bytes at `a` and `b` are equal. No early exit,
    /// so timing reveals nothing about the right MAC.
    @inline(__always)
    static func macsMatch(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer) -> Bool {
        var difference: UInt8 = 0
        for i in 0..<WireFormat.macSize {
            difference |= a.load(fromByteOffset: i, as: UInt8.self) ^ b.load(fromByteOffset: i, as: UInt8.self)
        }
        return difference == 0
    }
}

extension WireFormat {
    /// Offsets of mac1 and mac2 in a handshake message whose first byte is `type`, or nil
    /// if `type` is not initiation or response.
    static func macOffsets(ofType type: UInt8) -> (mac1: Int, mac2: Int)? {
        switch type {
        case MessageType.initiation.rawValue: (initiationMAC1Offset, initiationMAC2Offset)
        case MessageType.response.rawValue: (responseMAC1Offset, responseMAC2Offset)
        default: nil
        }
    }
}

/// The replier's side of cookies, one per data-path worker: checks mac2 and writes cookie
/// replies with nothing allocated per message.
///
/// The cookie secret changes every `secretLifetime` (periods of the monotonic clock); each
/// period's secret is derived from the node's random `masterSecret`, so every worker
/// computes the same cookies without sharing mutable state. A cookie therefore validates
/// until the end of the period it was issued in.
///
/// Not thread-safe (AES context, nonce counter, cached secret): deliberately not `Sendable`.
public final class CookieResponder {
    /// How long one cookie secret lasts.
    public static let secretLifetime: UInt64 = 120 * SessionLimits.nanosecondsPerSecond
    /// Bytes of a sender identity: IP address (16, IPv4 mapped) and port (2, big-endian).
    public static let identitySize = 18
    /// Bytes of the master secret.
    public static let masterSecretSize = 32

    private let masterSecret: [UInt8]
    private let cipher: AESGCMContext
    /// The period `secret` belongs to.
    private var period: UInt64 = .max
    private var secret = StackHMAC.zero
    /// Nonce = random 4-byte prefix || 8-byte counter starting at a random value: unique
    /// within this responder, and distinct from other workers' and runs' with overwhelming
    /// probability (the key is fixed by the static key, so nonces must never repeat).
    private let noncePrefix = UInt32.random(in: .min ... .max)
    private var nonceCounter = UInt64.random(in: .min ... .max)

    /// A responder for the holder of `localPublicKey`, with the node's `masterSecret`
    /// (`masterSecretSize` random bytes, shared by the node's workers).
    public init(localPublicKey: [UInt8], masterSecret: [UInt8]) throws(CryptoError) {
        guard masterSecret.count == Self.masterSecretSize else {
            throw .invalidKeyLength(what: "cookie master secret", expected: Self.masterSecretSize, actual: masterSecret.count)
        }
        self.masterSecret = masterSecret
        cipher = try CookieReply.cipher(for: localPublicKey)
    }

    /// Whether the mac2 of `message` (an initiation or response of the right size) is the
    /// one made with the current cookie of `source` (`identitySize` bytes). A zero mac2
    /// (sent without a cookie, as a flood's are) is refused before any MAC is computed.
    public func hasValidMAC2(_ message: UnsafeRawBufferPointer, source: UnsafeRawBufferPointer, now: UInt64) -> Bool {
        guard let first = message.first, let offsets = WireFormat.macOffsets(ofType: first),
              message.count == offsets.mac2 + WireFormat.macSize else { return false }
        var any: UInt8 = 0
        for i in offsets.mac2..<message.count { any |= message[i] }
        guard any != 0 else { return false }
        var cookie = StackHMAC.zero
        var mac = StackHMAC.zero
        withUnsafeMutableBytes(of: &cookie) { cookie in
            write(cookieOf: source, now: now, into: cookie.baseAddress!)
            withUnsafeMutableBytes(of: &mac) { mac in
                StackHMAC.authenticate(UnsafeRawBufferPointer(rebasing: message[0..<offsets.mac2]),
                                       key: UnsafeRawBufferPointer(rebasing: cookie[0..<WireFormat.cookieSize]),
                                       into: mac.baseAddress!)
            }
        }
        return withUnsafeBytes(of: &mac) { StackHMAC.macsMatch($0.baseAddress!, message.baseAddress! + offsets.mac2) }
    }

    /// Writes the cookie reply to `message` (an initiation or response of the right size)
    /// from `source` into `reply` (`WireFormat.cookieReplySize` bytes).
    /// - Returns: false if `message` is not such a message or OpenSSL failed.
    public func writeReply(answering message: UnsafeRawBufferPointer, source: UnsafeRawBufferPointer, now: UInt64,
                           into reply: UnsafeMutableRawBufferPointer) -> Bool {
        guard let first = message.first, let offsets = WireFormat.macOffsets(ofType: first),
              message.count == offsets.mac2 + WireFormat.macSize, reply.count == WireFormat.cookieReplySize
        else { return false }
        let base = reply.baseAddress!
        base.initializeMemory(as: UInt8.self, repeating: 0, count: WireFormat.cookieReplyReceiverIndexOffset)
        base.storeBytes(of: MessageType.cookieReply.rawValue, as: UInt8.self)
        (base + WireFormat.cookieReplyReceiverIndexOffset).copyMemory(
            from: message.baseAddress! + WireFormat.senderIndexOffset, byteCount: MemoryLayout<UInt32>.size)
        let nonce = base + WireFormat.cookieReplyNonceOffset
        nonce.storeBytes(of: noncePrefix.littleEndian, as: UInt32.self)
        (nonce + MemoryLayout<UInt32>.size).storeBytes(of: nonceCounter.littleEndian, as: UInt64.self)
        nonceCounter &+= 1
        var cookie = StackHMAC.zero
        withUnsafeMutableBytes(of: &cookie) { write(cookieOf: source, now: now, into: $0.baseAddress!) }
        withUnsafeBytes(of: &cookie) {
            (base + WireFormat.cookieReplyCookieOffset).copyMemory(from: $0.baseAddress!, byteCount: WireFormat.cookieSize)
        }
        return cipher.seal(
            nonce: UnsafePointer(nonce.assumingMemoryBound(to: UInt8.self)),
            additionalData: UnsafeRawBufferPointer(rebasing: message[offsets.mac1..<(offsets.mac1 + WireFormat.macSize)]),
            inPlace: UnsafeMutableRawBufferPointer(start: base + WireFormat.cookieReplyCookieOffset, count: WireFormat.cookieSize),
            tag: base + WireFormat.cookieReplyTagOffset)
    }

    /// Writes the cookie of `source` for the period of `now` (32 bytes, of which the first
    /// `WireFormat.cookieSize` are the cookie) to `cookie`.
    private func write(cookieOf source: UnsafeRawBufferPointer, now: UInt64, into cookie: UnsafeMutableRawPointer) {
        let current = now / Self.secretLifetime
        if current != period {
            period = current
            var periodBytes = current.littleEndian
            masterSecret.withUnsafeBytes { master in
                withUnsafeBytes(of: &periodBytes) { data in
                    withUnsafeMutableBytes(of: &secret) { StackHMAC.authenticate(data, key: master, into: $0.baseAddress!) }
                }
            }
        }
        withUnsafeBytes(of: &secret) { StackHMAC.authenticate(source, key: $0, into: cookie) }
    }
}

/// The sender's side of cookies (control thread; allocation is fine there): reads cookie
/// replies and writes mac2.
public enum CookieReply {
    /// How long a received cookie is used: its replier's secret lasts `secretLifetime`
    /// from some moment before it was issued; the margin covers the trip back.
    public static let cookieLifetime: UInt64 = CookieResponder.secretLifetime - 10 * SessionLimits.nanosecondsPerSecond

    /// A cipher keyed with the key that encrypts the cookies of the holder of `publicKey`.
    static func cipher(for publicKey: [UInt8]) throws(CryptoError) -> AESGCMContext {
        let key = Array(SHA256.hash(data: WireFormat.cookieLabel + publicKey))
        // Typed throws cannot cross withUnsafeBytes, so carry the result out.
        let result: Result<AESGCMContext, CryptoError> = key.withUnsafeBytes { bytes in
            do throws(CryptoError) { return .success(try AESGCMContext(key: bytes)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// The receiver index (the sender index of the message answered), or nil if `message`
    /// is not a cookie reply of the right size.
    public static func receiverIndex(_ message: UnsafeRawBufferPointer) -> UInt32? {
        guard message.count == WireFormat.cookieReplySize, message[0] == MessageType.cookieReply.rawValue,
              message[1] | message[2] | message[3] == 0 else { return nil }
        return UInt32(littleEndian: message.loadUnaligned(fromByteOffset: WireFormat.cookieReplyReceiverIndexOffset, as: UInt32.self))
    }

    /// The cookie in `message`, a reply of the holder of `replierPublicKey` to a message
    /// whose mac1 was `mac1`; nil if it is not such a reply or does not authenticate.
    public static func openCookie(_ message: UnsafeRawBufferPointer, replierPublicKey: [UInt8], mac1: [UInt8]) -> [UInt8]? {
        guard receiverIndex(message) != nil, mac1.count == WireFormat.macSize else { return nil }
        guard let cipher = try? cipher(for: replierPublicKey) else { return nil }
        var cookie = Array(message[WireFormat.cookieReplyCookieOffset..<WireFormat.cookieReplyTagOffset])
        let authentic = mac1.withUnsafeBytes { additionalData in
            cookie.withUnsafeMutableBytes { data in
                cipher.open(nonce: (message.baseAddress! + WireFormat.cookieReplyNonceOffset).assumingMemoryBound(to: UInt8.self),
                            additionalData: additionalData, inPlace: data,
                            tag: message.baseAddress! + WireFormat.cookieReplyTagOffset)
            }
        }
        return authentic ? cookie : nil
    }

    /// The mac1 of a handshake message (initiation or response of the right size).
    public static func mac1(of message: [UInt8]) -> [UInt8] {
        guard let first = message.first, let offsets = WireFormat.macOffsets(ofType: first),
              message.count == offsets.mac2 + WireFormat.macSize else { return [] }
        return Array(message[offsets.mac1..<(offsets.mac1 + WireFormat.macSize)])
    }

    /// Writes the mac2 of a handshake message (initiation or response of the right size)
    /// under `cookie`; any other message is left as it is.
    public static func writeMAC2(in message: inout [UInt8], cookie: [UInt8]) {
        guard let first = message.first, let offsets = WireFormat.macOffsets(ofType: first),
              message.count == offsets.mac2 + WireFormat.macSize else { return }
        let mac = message.withUnsafeBytes {
            HMAC<SHA256>.authenticationCode(for: UnsafeRawBufferPointer(rebasing: $0[0..<offsets.mac2]),
                                            using: SymmetricKey(data: cookie))
        }
        message.replaceSubrange(offsets.mac2..<message.count, with: Array(mac).prefix(WireFormat.macSize))
    }
}
