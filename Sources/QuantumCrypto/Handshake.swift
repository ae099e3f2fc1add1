// The handshake as the Node drives it: Noise IK messages framed as quantum
// initiation/response messages (layout in WireFormat.swift), with mac1 checked
// before any Diffie-Hellman so junk is rejected cheaply.
import Crypto
import Foundation

/// Why a handshake message was refused or could not be built.
public enum HandshakeError: Error, Equatable, CustomStringConvertible {
    /// The message does not have the size its type requires.
    case wrongSize(expected: Int, actual: Int)
    /// The first byte is not the expected message type.
    case wrongType(expected: UInt8, actual: UInt8)
    /// One of the three reserved header bytes is not zero.
    case reservedBytesNotZero
    /// mac1 does not match: not addressed to this node's static key, or corrupted.
    case badMAC1
    /// A response's receiver index is not the index of the pending initiation.
    case wrongReceiverIndex(expected: UInt32, actual: UInt32)
    /// A public key is malformed or of low order (its Diffie-Hellman result is zero).
    case invalidPublicKey
    /// An encrypted field did not authenticate: wrong keys, tampering, or a
    /// response to a different initiation.
    case decryptionFailed
    /// AES-GCM encryption failed inside swift-crypto (not expected to happen).
    case encryptionFailed

    public var description: String {
        switch self {
        case let .wrongSize(expected, actual):
            return "handshake message has \(actual) bytes, expected \(expected)"
        case let .wrongType(expected, actual):
            return "handshake message has type \(actual), expected \(expected)"
        case .reservedBytesNotZero:
            return "handshake message has non-zero reserved bytes"
        case .badMAC1:
            return "handshake message has a bad mac1"
        case let .wrongReceiverIndex(expected, actual):
            return "handshake response is for index \(actual), expected \(expected)"
        case .invalidPublicKey:
            return "public key is malformed or of low order"
        case .decryptionFailed:
            return "handshake message failed to decrypt"
        case .encryptionFailed:
            return "handshake encryption failed"
        }
    }
}

/// The transport keys and indices of a completed handshake, ready for `Session`.
/// The keys are `SymmetricKey`s, whose storage swift-crypto zeroes when released.
public struct SessionKeys: Sendable {
    /// Key for messages this node sends.
    public let sendingKey: SymmetricKey
    /// Key for messages this node receives.
    public let receivingKey: SymmetricKey
    /// This node's index for the session: peers put it in the receiver index field.
    public let localIndex: UInt32
    /// The peer's index for the session: this node puts it in the receiver index field.
    public let remoteIndex: UInt32
    /// Whether this node initiated the handshake (only the initiator rekeys on time).
    public let isInitiator: Bool
}

/// The initiator's state between sending an initiation and receiving the response.
/// Immutable: a forged response does not consume it.
public final class InitiatorState: Sendable {
    /// The sender index put in the initiation; the response must name it as receiver.
    public let senderIndex: UInt32
    /// The static public key of the peer the initiation was sent to.
    public let peerPublicKey: [UInt8]
    let noise: NoiseIKHandshake

    init(noise: NoiseIKHandshake, senderIndex: UInt32, peerPublicKey: [UInt8]) {
        self.noise = noise
        self.senderIndex = senderIndex
        self.peerPublicKey = peerPublicKey
    }
}

/// An initiation that passed mac1 and decrypted. The Node must check that
/// `peerPublicKey` belongs to a known peer and that `timestamp` is newer than the
/// last one accepted from that peer before calling `Handshaker.makeResponse`.
public final class ReceivedInitiation: Sendable {
    /// The initiator's static public key (decrypted from the message).
    public let peerPublicKey: [UInt8]
    /// The initiator's timestamp (decrypted from the message).
    public let timestamp: TAI64N
    /// The initiator's index; the response and the peer's transport messages use it.
    public let senderIndex: UInt32
    let noise: NoiseIKHandshake

    init(noise: NoiseIKHandshake, peerPublicKey: [UInt8], timestamp: TAI64N, senderIndex: UInt32) {
        self.noise = noise
        self.peerPublicKey = peerPublicKey
        self.timestamp = timestamp
        self.senderIndex = senderIndex
    }
}

/// Builds and checks handshake messages for one local static identity.
/// Stateless apart from its keys, so one instance serves all threads.
public final class Handshaker: Sendable {
    /// This node's static key pair.
    public let localKeys: StaticKeyPair
    /// Verifies mac1 of messages addressed to this node (key precomputed once).
    private let incomingMAC1: HandshakeScreen

    /// A handshaker for the identity `localKeys`.
    public init(localKeys: StaticKeyPair) {
        self.localKeys = localKeys
        incomingMAC1 = HandshakeScreen(localPublicKey: localKeys.publicKey)
    }

    /// Builds an initiation to the peer whose static public key is `peerPublicKey`.
    /// - Throws: `HandshakeError.invalidPublicKey` if the peer key is malformed or of low order.
    public func makeInitiation(
        peerPublicKey: [UInt8], senderIndex: UInt32, timestamp: TAI64N
    ) throws(HandshakeError) -> (message: [UInt8], state: InitiatorState) {
        try makeInitiation(peerPublicKey: peerPublicKey, senderIndex: senderIndex, timestamp: timestamp, ephemeral: .init())
    }

    /// `makeInitiation` with a given ephemeral key, so a pending initiation can be rebuilt
    /// exactly (the fuzz harness's response corpus stays valid across runs).
    func makeInitiation(
        peerPublicKey: [UInt8], senderIndex: UInt32, timestamp: TAI64N, ephemeral: Curve25519.KeyAgreement.PrivateKey
    ) throws(HandshakeError) -> (message: [UInt8], state: InitiatorState) {
        guard peerPublicKey.count == NoiseIKHandshake.publicKeySize else { throw .invalidPublicKey }
        var noise = NoiseIKHandshake(initiator: localKeys, responderStatic: peerPublicKey, prologue: WireFormat.prologue)
        let body = try noise.writeInitiation(payload: timestamp.bytes, ephemeral: ephemeral)
        var message = [UInt8](repeating: 0, count: WireFormat.initiationSize)
        message[0] = MessageType.initiation.rawValue
        Self.storeIndex(senderIndex, in: &message, at: WireFormat.senderIndexOffset)
        message.replaceSubrange(
            WireFormat.initiationNoiseOffset..<WireFormat.initiationMAC1Offset, with: body)
        Self.writeMAC1(in: &message, at: WireFormat.initiationMAC1Offset, key: Self.mac1Key(for: peerPublicKey))
        return (message, InitiatorState(noise: noise, senderIndex: senderIndex, peerPublicKey: peerPublicKey))
    }

    /// Checks and decrypts an initiation addressed to this node. mac1 is verified
    /// before any Diffie-Hellman. The sender's static key is reported, not judged.
    public func consumeInitiation(_ message: UnsafeRawBufferPointer) throws(HandshakeError) -> ReceivedInitiation {
        try checkFrame(message, type: .initiation, size: WireFormat.initiationSize, mac1Offset: WireFormat.initiationMAC1Offset)
        var noise = NoiseIKHandshake(responder: localKeys, prologue: WireFormat.prologue)
        let payload = try noise.readInitiation(
            Array(message[WireFormat.initiationNoiseOffset..<WireFormat.initiationMAC1Offset]))
        guard let timestamp = TAI64N(bytes: payload), let peerPublicKey = noise.remoteStatic else {
            throw .wrongSize(expected: TAI64N.size, actual: payload.count)
        }
        return ReceivedInitiation(
            noise: noise, peerPublicKey: peerPublicKey, timestamp: timestamp,
            senderIndex: Self.loadIndex(message, at: WireFormat.senderIndexOffset))
    }

    /// Builds the response to an accepted initiation and derives the session keys.
    /// `observedEndpoint` (`WireFormat.observedEndpointSize` bytes, layout in WireFormat.swift)
    /// tells the initiator where its initiation came from; it travels encrypted and authenticated.
    /// - Throws: `HandshakeError.invalidPublicKey` if the initiator's keys are of low order,
    ///   `HandshakeError.wrongSize` if `observedEndpoint` has the wrong size.
    public func makeResponse(
        to initiation: ReceivedInitiation, senderIndex: UInt32, observedEndpoint: [UInt8]
    ) throws(HandshakeError) -> (message: [UInt8], keys: SessionKeys) {
        guard observedEndpoint.count == WireFormat.observedEndpointSize else {
            throw .wrongSize(expected: WireFormat.observedEndpointSize, actual: observedEndpoint.count)
        }
        var noise = initiation.noise
        let body = try noise.writeResponse(payload: observedEndpoint)
        var message = [UInt8](repeating: 0, count: WireFormat.responseSize)
        message[0] = MessageType.response.rawValue
        Self.storeIndex(senderIndex, in: &message, at: WireFormat.senderIndexOffset)
        Self.storeIndex(initiation.senderIndex, in: &message, at: WireFormat.responseReceiverIndexOffset)
        message.replaceSubrange(WireFormat.responseNoiseOffset..<WireFormat.responseMAC1Offset, with: body)
        Self.writeMAC1(in: &message, at: WireFormat.responseMAC1Offset, key: Self.mac1Key(for: initiation.peerPublicKey))
        let (initiatorToResponder, responderToInitiator) = noise.split()
        let keys = SessionKeys(
            sendingKey: responderToInitiator, receivingKey: initiatorToResponder,
            localIndex: senderIndex, remoteIndex: initiation.senderIndex, isInitiator: false)
        return (message, keys)
    }

    /// Checks a response against the pending initiation `state` and derives the
    /// session keys; also returns the observed endpoint the responder reported
    /// (`WireFormat.observedEndpointSize` bytes, authenticated with the handshake).
    /// mac1 and the receiver index are checked before any Diffie-Hellman.
    public func consumeResponse(
        _ message: UnsafeRawBufferPointer, state: InitiatorState
    ) throws(HandshakeError) -> (keys: SessionKeys, observedEndpoint: [UInt8]) {
        try checkFrame(message, type: .response, size: WireFormat.responseSize, mac1Offset: WireFormat.responseMAC1Offset)
        let receiverIndex = Self.loadIndex(message, at: WireFormat.responseReceiverIndexOffset)
        guard receiverIndex == state.senderIndex else {
            throw .wrongReceiverIndex(expected: state.senderIndex, actual: receiverIndex)
        }
        var noise = state.noise
        let observed = try noise.readResponse(Array(message[WireFormat.responseNoiseOffset..<WireFormat.responseMAC1Offset]))
        let (initiatorToResponder, responderToInitiator) = noise.split()
        let keys = SessionKeys(
            sendingKey: initiatorToResponder, receivingKey: responderToInitiator,
            localIndex: state.senderIndex, remoteIndex: Self.loadIndex(message, at: WireFormat.senderIndexOffset),
            isInitiator: true)
        return (keys, observed)
    }

    /// Size, type, reserved bytes and mac1: everything that needs no Diffie-Hellman.
    private func checkFrame(
        _ message: UnsafeRawBufferPointer, type: MessageType, size: Int, mac1Offset: Int
    ) throws(HandshakeError) {
        guard message.count == size else { throw .wrongSize(expected: size, actual: message.count) }
        guard message[0] == type.rawValue else { throw .wrongType(expected: type.rawValue, actual: message[0]) }
        guard message[1] | message[2] | message[3] == 0 else { throw .reservedBytesNotZero }
        guard incomingMAC1.hasValidMAC1(message, at: mac1Offset) else { throw .badMAC1 }
    }

    /// The mac1 key of messages addressed to the holder of `publicKey`.
    static func mac1Key(for publicKey: [UInt8]) -> SymmetricKey {
        SymmetricKey(data: HandshakeScreen.mac1KeyBytes(for: publicKey))
    }

    private static func mac1(_ covered: UnsafeRawBufferPointer, key: SymmetricKey) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: covered, using: key).prefix(WireFormat.macSize))
    }

    /// Computes mac1 over the bytes before `offset` and stores it at `offset`.
    static func writeMAC1(in message: inout [UInt8], at offset: Int, key: SymmetricKey) {
        let mac = message.withUnsafeBytes { mac1(UnsafeRawBufferPointer(rebasing: $0[0..<offset]), key: key) }
        message.replaceSubrange(offset..<(offset + WireFormat.macSize), with: mac)
    }

    private static func storeIndex(_ index: UInt32, in message: inout [UInt8], at offset: Int) {
        message.withUnsafeMutableBytes { $0.storeBytes(of: index.littleEndian, toByteOffset: offset, as: UInt32.self) }
    }

    private static func loadIndex(_ message: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        UInt32(littleEndian: message.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}
