// The Noise core: SymmetricState and the IK handshake pattern of
// Noise_IK_25519_AESGCM_SHA256, following the Noise Protocol Framework, revision 34.
// Wire framing, indices and MACs live in Handshake.swift; this file is pure Noise
// and is checked byte for byte against the published test vectors.
//
// Secrets (chaining key, cipher key, ephemeral private keys, DH outputs) are held
// in swift-crypto types (`SymmetricKey`, `SharedSecret`, `Curve25519` private keys)
// whose storage is zeroed when the last reference goes away.
import Crypto
import Foundation

/// Noise SymmetricState (spec §5.2) with its CipherState (§5.1) folded in,
/// for SHA-256 (HASHLEN 32) and AES-256-GCM.
struct NoiseSymmetricState {
    /// HASHLEN for SHA-256.
    static let hashSize = 32
    /// Size of the AES-GCM tag appended by EncryptWithAd.
    static let tagSize = 16

    private(set) var chainingKey: SymmetricKey
    /// The handshake hash `h`.
    private(set) var hash: [UInt8]
    private var cipherKey: SymmetricKey?
    private var nonce: UInt64 = 0

    /// InitializeSymmetric: `h` is the protocol name padded with zeros (or hashed
    /// if longer than HASHLEN), `ck = h`, no cipher key.
    init(protocolName: String) {
        let name = Array(protocolName.utf8)
        if name.count <= Self.hashSize {
            hash = name + [UInt8](repeating: 0, count: Self.hashSize - name.count)
        } else {
            hash = Array(SHA256.hash(data: name))
        }
        chainingKey = SymmetricKey(data: hash)
    }

    /// MixHash: `h = HASH(h || data)`.
    mutating func mixHash(_ data: some DataProtocol) {
        var hasher = SHA256()
        hasher.update(data: hash)
        hasher.update(data: data)
        hash = Array(hasher.finalize())
    }

    /// MixKey: `ck, k = HKDF(ck, ikm, 2)`; the nonce restarts at zero.
    mutating func mixKey(_ inputKeyMaterial: SymmetricKey) {
        let (newChainingKey, key) = Self.hkdf(chainingKey: chainingKey, inputKeyMaterial: inputKeyMaterial)
        chainingKey = newChainingKey
        cipherKey = key
        nonce = 0
    }

    /// EncryptAndHash: encrypts with `h` as additional data (if a key is set) and mixes
    /// the ciphertext into `h`.
    mutating func encryptAndHash(_ plaintext: [UInt8]) throws(HandshakeError) -> [UInt8] {
        guard let cipherKey else {
            mixHash(plaintext)
            return plaintext
        }
        let ciphertext: [UInt8]
        do {
            let box = try AES.GCM.seal(plaintext, using: cipherKey, nonce: Self.gcmNonce(nonce), authenticating: hash)
            ciphertext = Array(box.ciphertext) + Array(box.tag)
        } catch {
            throw .encryptionFailed
        }
        nonce += 1
        mixHash(ciphertext)
        return ciphertext
    }

    /// DecryptAndHash: the inverse of `encryptAndHash`.
    /// - Throws: `HandshakeError.decryptionFailed` if the tag does not verify.
    mutating func decryptAndHash(_ ciphertext: [UInt8]) throws(HandshakeError) -> [UInt8] {
        guard let cipherKey else {
            mixHash(ciphertext)
            return ciphertext
        }
        guard ciphertext.count >= Self.tagSize else { throw .decryptionFailed }
        let plaintext: Data
        do {
            let box = try AES.GCM.SealedBox(
                nonce: Self.gcmNonce(nonce),
                ciphertext: ciphertext.dropLast(Self.tagSize),
                tag: ciphertext.suffix(Self.tagSize))
            plaintext = try AES.GCM.open(box, using: cipherKey, authenticating: hash)
        } catch {
            throw .decryptionFailed
        }
        nonce += 1
        mixHash(ciphertext)
        return Array(plaintext)
    }

    /// Split: the two transport keys, `HKDF(ck, zerolen, 2)`.
    func split() -> (first: SymmetricKey, second: SymmetricKey) {
        Self.hkdf(chainingKey: chainingKey, inputKeyMaterial: SymmetricKey(data: [UInt8]()))
    }

    /// Noise's HKDF with two outputs. With empty `info`, RFC 5869 HKDF's first 64
    /// output bytes are exactly Noise's `output1 || output2`.
    private static func hkdf(
        chainingKey: SymmetricKey, inputKeyMaterial: SymmetricKey
    ) -> (SymmetricKey, SymmetricKey) {
        let output = chainingKey.withUnsafeBytes { salt in
            HKDF<SHA256>.deriveKey(inputKeyMaterial: inputKeyMaterial, salt: salt, outputByteCount: 2 * hashSize)
        }
        return output.withUnsafeBytes { bytes in
            (SymmetricKey(data: UnsafeRawBufferPointer(rebasing: bytes[0..<hashSize])),
             SymmetricKey(data: UnsafeRawBufferPointer(rebasing: bytes[hashSize..<(2 * hashSize)])))
        }
    }

    /// The AESGCM nonce of Noise §12.3: 32 zero bits, then the counter big-endian.
    private static func gcmNonce(_ counter: UInt64) throws -> AES.GCM.Nonce {
        var bytes = [UInt8](repeating: 0, count: AESGCMContext.nonceSize)
        withUnsafeBytes(of: counter.bigEndian) { bytes.replaceSubrange(4..<12, with: $0) }
        return try AES.GCM.Nonce(data: bytes)
    }
}

/// The Noise IK handshake pattern:
///
///     IK:
///       <- s
///       ...
///       -> e, es, s, ss
///       <- e, ee, se
///
/// One value is one side's handshake state. Ephemeral keys are parameters so tests
/// can inject the ones from the published vectors.
struct NoiseIKHandshake {
    /// The full protocol name, mixed into the initial handshake hash.
    static let protocolName = "Noise_IK_25519_AESGCM_SHA256"
    /// Size of a Curve25519 public key on the wire (DHLEN).
    static let publicKeySize = 32
    /// Length of message 1 without its payload: e, encrypted s (with tag), payload tag.
    static let initiationOverhead = publicKeySize + (publicKeySize + NoiseSymmetricState.tagSize) + NoiseSymmetricState.tagSize
    /// Length of message 2 without its payload: e and the payload tag.
    static let responseOverhead = publicKeySize + NoiseSymmetricState.tagSize

    private var symmetric: NoiseSymmetricState
    private let localStatic: StaticKeyPair
    private var localEphemeral: Curve25519.KeyAgreement.PrivateKey?
    /// The peer's static public key: given to the initiator, learned by the responder in message 1.
    private(set) var remoteStatic: [UInt8]?
    private var remoteEphemeral: [UInt8]?

    /// The initiator's state: it knows the responder's static key in advance.
    init(initiator localStatic: StaticKeyPair, responderStatic: [UInt8], prologue: [UInt8]) {
        symmetric = NoiseSymmetricState(protocolName: Self.protocolName)
        self.localStatic = localStatic
        remoteStatic = responderStatic
        symmetric.mixHash(prologue)
        symmetric.mixHash(responderStatic)
    }

    /// The responder's state: the pre-message is its own static public key.
    init(responder localStatic: StaticKeyPair, prologue: [UInt8]) {
        symmetric = NoiseSymmetricState(protocolName: Self.protocolName)
        self.localStatic = localStatic
        symmetric.mixHash(prologue)
        symmetric.mixHash(localStatic.publicKey)
    }

    /// The handshake hash `h`; after message 2 it identifies the whole handshake.
    var handshakeHash: [UInt8] { symmetric.hash }

    /// Initiator writes message 1: `e, es, s, ss` then the encrypted payload.
    mutating func writeInitiation(
        payload: [UInt8], ephemeral: Curve25519.KeyAgreement.PrivateKey = .init()
    ) throws(HandshakeError) -> [UInt8] {
        guard let responderStatic = remoteStatic else { preconditionFailure("writeInitiation on a responder") }
        localEphemeral = ephemeral
        let ephemeralPublic = Array(ephemeral.publicKey.rawRepresentation)
        symmetric.mixHash(ephemeralPublic)
        symmetric.mixKey(try Self.dh(ephemeral, responderStatic))                     // es
        let encryptedStatic = try symmetric.encryptAndHash(localStatic.publicKey)     // s
        symmetric.mixKey(try Self.dh(localStatic.agreementKey, responderStatic))     // ss
        return ephemeralPublic + encryptedStatic + (try symmetric.encryptAndHash(payload))
    }

    /// Responder reads message 1 and returns its payload; `remoteStatic` is then set.
    mutating func readInitiation(_ message: [UInt8]) throws(HandshakeError) -> [UInt8] {
        guard message.count >= Self.initiationOverhead else {
            throw .wrongSize(expected: Self.initiationOverhead, actual: message.count)
        }
        let ephemeralPublic = Array(message[0..<Self.publicKeySize])
        remoteEphemeral = ephemeralPublic
        symmetric.mixHash(ephemeralPublic)
        symmetric.mixKey(try Self.dh(localStatic.agreementKey, ephemeralPublic))      // es
        let staticEnd = Self.publicKeySize * 2 + NoiseSymmetricState.tagSize
        let initiatorStatic = try symmetric.decryptAndHash(Array(message[Self.publicKeySize..<staticEnd]))  // s
        remoteStatic = initiatorStatic
        symmetric.mixKey(try Self.dh(localStatic.agreementKey, initiatorStatic))     // ss
        return try symmetric.decryptAndHash(Array(message[staticEnd...]))
    }

    /// Responder writes message 2: `e, ee, se` then the encrypted payload.
    mutating func writeResponse(
        payload: [UInt8], ephemeral: Curve25519.KeyAgreement.PrivateKey = .init()
    ) throws(HandshakeError) -> [UInt8] {
        guard let initiatorEphemeral = remoteEphemeral, let initiatorStatic = remoteStatic else {
            preconditionFailure("writeResponse before readInitiation")
        }
        let ephemeralPublic = Array(ephemeral.publicKey.rawRepresentation)
        symmetric.mixHash(ephemeralPublic)
        symmetric.mixKey(try Self.dh(ephemeral, initiatorEphemeral))                  // ee
        symmetric.mixKey(try Self.dh(ephemeral, initiatorStatic))                     // se
        return ephemeralPublic + (try symmetric.encryptAndHash(payload))
    }

    /// Initiator reads message 2 and returns its payload.
    mutating func readResponse(_ message: [UInt8]) throws(HandshakeError) -> [UInt8] {
        guard let ephemeral = localEphemeral else { preconditionFailure("readResponse before writeInitiation") }
        guard message.count >= Self.responseOverhead else {
            throw .wrongSize(expected: Self.responseOverhead, actual: message.count)
        }
        let responderEphemeral = Array(message[0..<Self.publicKeySize])
        symmetric.mixHash(responderEphemeral)
        symmetric.mixKey(try Self.dh(ephemeral, responderEphemeral))                  // ee
        symmetric.mixKey(try Self.dh(localStatic.agreementKey, responderEphemeral))   // se
        return try symmetric.decryptAndHash(Array(message[Self.publicKeySize...]))
    }

    /// The transport keys after message 2: the first encrypts initiator → responder.
    func split() -> (initiatorToResponder: SymmetricKey, responderToInitiator: SymmetricKey) {
        let (first, second) = symmetric.split()
        return (first, second)
    }

    /// X25519. A malformed or low-order public key is refused: swift-crypto does not
    /// reject the all-zero shared secret such keys produce, so this checks it.
    private static func dh(
        _ privateKey: Curve25519.KeyAgreement.PrivateKey, _ publicKey: [UInt8]
    ) throws(HandshakeError) -> SymmetricKey {
        let shared: SharedSecret
        do {
            let peer = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: publicKey)
            shared = try privateKey.sharedSecretFromKeyAgreement(with: peer)
        } catch {
            throw .invalidPublicKey
        }
        // OR of all bytes, without early exit, so timing does not depend on the secret.
        let nonZeroBits = shared.withUnsafeBytes { $0.reduce(UInt8(0)) { $0 | $1 } }
        guard nonZeroBits != 0 else { throw .invalidPublicKey }
        return shared.withUnsafeBytes { SymmetricKey(data: $0) }
    }
}
