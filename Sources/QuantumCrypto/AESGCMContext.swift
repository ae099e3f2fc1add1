import CQuantumCrypto

/// AES-256-GCM for the data path: encrypts and decrypts *in place* with a key
/// schedule computed once, so sealing a packet allocates nothing.
///
/// Not thread-safe: an OpenSSL cipher context carries per-call state (IV, GHASH).
/// Give each worker thread its own context (as `Session` does). It is deliberately
/// not `Sendable`.
///
/// The nonce is the Noise AESGCM nonce: 4 zero bytes followed by the 64-bit
/// counter in big-endian order (Noise spec §12.3).
public final class AESGCMContext {
    /// Key size of AES-256 in bytes.
    public static let keySize = 32
    /// Size of the GCM authentication tag in bytes.
    public static let tagSize = 16
    /// Size of the GCM nonce in bytes.
    public static let nonceSize = 12

    private var context: OpaquePointer?

    /// Keys a new context. The key bytes are read, never copied into Swift memory.
    /// - Throws: `CryptoError.invalidKeyLength` unless `key` has 32 bytes;
    ///   `CryptoError.cipherSetupFailed` if OpenSSL fails.
    public init(key: UnsafeRawBufferPointer) throws(CryptoError) {
        guard key.count == Self.keySize, let base = key.baseAddress else {
            throw .invalidKeyLength(what: "AES-256-GCM key", expected: Self.keySize, actual: key.count)
        }
        guard let context = quantum_aesgcm_new(base.assumingMemoryBound(to: UInt8.self)) else {
            throw .cipherSetupFailed
        }
        self.context = context
    }

    deinit {
        quantum_aesgcm_free(context)
    }

    /// Frees the OpenSSL context now (OpenSSL cleanses the key schedule). Later calls
    /// to `seal` or `open` fail. The caller must ensure no other call is in progress.
    public func wipe() {
        quantum_aesgcm_free(context)
        context = nil
    }

    /// Encrypts `data` in place and writes the 16-byte tag at `tag`.
    /// - Parameters:
    ///   - counter: the message counter; it must never repeat under one key.
    ///   - additionalData: bytes authenticated but not encrypted (may be empty).
    ///   - data: the plaintext, replaced by the ciphertext of the same length.
    ///   - tag: room for `tagSize` bytes.
    /// - Returns: false only if the context was wiped or OpenSSL failed.
    public func seal(
        counter: UInt64, additionalData: UnsafeRawBufferPointer,
        inPlace data: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawPointer
    ) -> Bool {
        withNonce(counter) { nonce in
            seal(nonce: nonce, additionalData: additionalData, inPlace: data, tag: tag)
        }
    }

    /// Decrypts `data` in place if `tag` authenticates it with `additionalData`.
    /// - Returns: true if authentic; on false the contents of `data` are undefined.
    public func open(
        counter: UInt64, additionalData: UnsafeRawBufferPointer,
        inPlace data: UnsafeMutableRawBufferPointer, tag: UnsafeRawPointer
    ) -> Bool {
        withNonce(counter) { nonce in
            open(nonce: nonce, additionalData: additionalData, inPlace: data, tag: tag)
        }
    }

    /// `seal` with an arbitrary 12-byte nonce (for known-answer tests of the cipher).
    func seal(
        nonce: UnsafePointer<UInt8>, additionalData: UnsafeRawBufferPointer,
        inPlace data: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawPointer
    ) -> Bool {
        guard let context else { return false }
        return quantum_aesgcm_seal(
            context, nonce,
            additionalData.baseAddress?.assumingMemoryBound(to: UInt8.self), additionalData.count,
            data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count,
            tag.assumingMemoryBound(to: UInt8.self)) == 1
    }

    /// `open` with an arbitrary 12-byte nonce (for known-answer tests of the cipher).
    func open(
        nonce: UnsafePointer<UInt8>, additionalData: UnsafeRawBufferPointer,
        inPlace data: UnsafeMutableRawBufferPointer, tag: UnsafeRawPointer
    ) -> Bool {
        guard let context else { return false }
        return quantum_aesgcm_open(
            context, nonce,
            additionalData.baseAddress?.assumingMemoryBound(to: UInt8.self), additionalData.count,
            data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count,
            tag.assumingMemoryBound(to: UInt8.self)) == 1
    }

    /// Builds the Noise nonce (4 zero bytes || big-endian counter) on the stack.
    private func withNonce(_ counter: UInt64, _ body: (UnsafePointer<UInt8>) -> Bool) -> Bool {
        // Three UInt32s are laid out contiguously: exactly the 12 nonce bytes.
        let nonce: (UInt32, UInt32, UInt32) = (
            0, UInt32(truncatingIfNeeded: counter >> 32).bigEndian, UInt32(truncatingIfNeeded: counter).bigEndian
        )
        return withUnsafeBytes(of: nonce) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
    }
}
