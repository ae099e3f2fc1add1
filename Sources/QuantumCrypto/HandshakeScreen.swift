import Crypto

/// The checks a data-path worker applies to a handshake message before handing it to
/// the control thread: the size its type requires and mac1 (keyed by this node's static
/// public key). Needs no Diffie-Hellman, so junk is refused before it takes a backlog slot.
///
/// The mac1 key is hashed once, at creation; each check is an HMAC whose states live on
/// the stack (`StackHMAC`), so it allocates nothing.
public struct HandshakeScreen: Sendable {
    /// Why a handshake message was refused.
    public enum Refusal: Error, Equatable, Sendable {
        /// Not the size its type (initiation or response) requires.
        case wrongSize
        /// mac1 does not match: not addressed to this node's static key, or corrupted.
        case badMAC1
    }

    /// This node's mac1 key: SHA256("mac1----" || static public key).
    private let mac1Key: [UInt8]

    /// A screen for messages addressed to the holder of `localPublicKey`.
    public init(localPublicKey: [UInt8]) {
        mac1Key = Self.mac1KeyBytes(for: localPublicKey)
    }

    /// The mac1 key of messages addressed to the holder of `publicKey`.
    static func mac1KeyBytes(for publicKey: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: WireFormat.mac1Label + publicKey))
    }

    /// Checks an initiation or response (by its first byte); any other type is refused as
    /// `wrongSize`, having no handshake size.
    public func check(_ message: UnsafeRawBufferPointer) throws(Refusal) {
        // mac2 ends both kinds of message.
        guard let first = message.first, let offsets = WireFormat.macOffsets(ofType: first),
              message.count == offsets.mac2 + WireFormat.macSize else { throw .wrongSize }
        guard hasValidMAC1(message, at: offsets.mac1) else { throw .badMAC1 }
    }

    /// Whether the `WireFormat.macSize` bytes at `offset` are the mac1 of the bytes before
    /// them. The comparison has no early exit, so timing reveals nothing about the right MAC.
    func hasValidMAC1(_ message: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        var mac = StackHMAC.zero
        return withUnsafeMutableBytes(of: &mac) { mac in
            mac1Key.withUnsafeBytes { key in
                StackHMAC.authenticate(UnsafeRawBufferPointer(rebasing: message[0..<offset]), key: key, into: mac.baseAddress!)
            }
            return StackHMAC.macsMatch(mac.baseAddress!, message.baseAddress! + offset)
        }
    }
}
