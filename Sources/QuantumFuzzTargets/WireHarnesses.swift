import Crypto
@testable import QuantumCrypto

/// Fixed identities and keys, so a committed corpus stays valid for every later run.
enum FuzzKeys {
    static let responder = keyPair(0x52)
    static let initiator = keyPair(0x49)
    /// The initiator's ephemeral key for the pending initiation a response must match.
    static let initiatorEphemeral = try! Curve25519.KeyAgreement.PrivateKey(
        rawRepresentation: [UInt8](repeating: 0x45, count: StaticKeyPair.keySize))
    /// Session keys: initiator → responder, responder → initiator.
    static let forward = SymmetricKey(data: [UInt8](repeating: 0x46, count: AESGCMContext.keySize))
    static let backward = SymmetricKey(data: [UInt8](repeating: 0x42, count: AESGCMContext.keySize))
    static let initiationIndex: UInt32 = 0x0102_0304
    static let responseIndex: UInt32 = 0x0A0B_0C0D
    /// The address the responder reports having seen the initiation come from (192.0.2.1:1099, IPv4-mapped).
    static let observedEndpoint: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 192, 0, 2, 1, 0x4B, 0x04]
    static let timestamp = TAI64N(unixSeconds: 1_700_000_000, nanoseconds: 0)

    /// A key pair from a repeated byte (any 32 bytes are a valid X25519 private key).
    private static func keyPair(_ fill: UInt8) -> StaticKeyPair {
        try! StaticKeyPair(privateKey: [UInt8](repeating: fill, count: StaticKeyPair.keySize))
    }

    /// The initiation `initiator` sends `responder`, with its pending state.
    static func initiation() -> (message: [UInt8], state: InitiatorState) {
        try! Handshaker(localKeys: initiator).makeInitiation(
            peerPublicKey: responder.publicKey, senderIndex: initiationIndex, timestamp: timestamp,
            ephemeral: initiatorEphemeral)
    }

    /// `message` with mac1 recomputed for the holder of `receiver`, so a mutated message
    /// gets past mac1 to the parsing behind it.
    static func remac(_ input: UnsafeRawBufferPointer, size: Int, mac1Offset: Int, receiver: [UInt8]) -> [UInt8]? {
        guard input.count == size else { return nil }
        var message = Array(input)
        Handshaker.writeMAC1(in: &message, at: mac1Offset, key: Handshaker.mac1Key(for: receiver))
        return message
    }
}

/// Initiations addressed to `FuzzKeys.responder`: the worker's screen, then the control
/// thread's full check and decryption, as received and with mac1 made valid; an
/// initiation that decrypts is answered.
struct InitiationHarness: FuzzHarness {
    private let handshaker = Handshaker(localKeys: FuzzKeys.responder)
    private let screen = HandshakeScreen(localPublicKey: FuzzKeys.responder.publicKey)

    func seeds() -> [[UInt8]] {
        let other = try! Handshaker(localKeys: FuzzKeys.initiator).makeInitiation(
            peerPublicKey: FuzzKeys.responder.publicKey, senderIndex: 7, timestamp: TAI64N.now()).message
        return [FuzzKeys.initiation().message, other]
    }

    func run(_ input: UnsafeRawBufferPointer) {
        _ = try? screen.check(input)
        _ = try? handshaker.consumeInitiation(input)
        guard let message = FuzzKeys.remac(input, size: WireFormat.initiationSize, mac1Offset: WireFormat.initiationMAC1Offset,
                                           receiver: FuzzKeys.responder.publicKey),
              let received = try? message.withUnsafeBytes({ bytes throws(HandshakeError) in
                  try handshaker.consumeInitiation(bytes)
              })
        else { return }
        _ = try? handshaker.makeResponse(to: received, senderIndex: FuzzKeys.responseIndex,
                                         observedEndpoint: FuzzKeys.observedEndpoint)
    }
}

/// Responses to `FuzzKeys.initiation()`, as received and with mac1 made valid; a response
/// that completes the handshake becomes a session.
struct ResponseHarness: FuzzHarness {
    private let handshaker = Handshaker(localKeys: FuzzKeys.initiator)
    private let state = FuzzKeys.initiation().state

    func seeds() -> [[UInt8]] {
        let responder = Handshaker(localKeys: FuzzKeys.responder)
        let initiation = FuzzKeys.initiation().message
        let received = try! initiation.withUnsafeBytes { bytes throws(HandshakeError) in try responder.consumeInitiation(bytes) }
        return [try! responder.makeResponse(to: received, senderIndex: FuzzKeys.responseIndex,
                                            observedEndpoint: FuzzKeys.observedEndpoint).message]
    }

    func run(_ input: UnsafeRawBufferPointer) {
        _ = try? handshaker.consumeResponse(input, state: state)
        guard let message = FuzzKeys.remac(input, size: WireFormat.responseSize, mac1Offset: WireFormat.responseMAC1Offset,
                                           receiver: FuzzKeys.initiator.publicKey),
              let keys = try? message.withUnsafeBytes({ bytes throws(HandshakeError) in
                  try handshaker.consumeResponse(bytes, state: state).keys
              })
        else { return }
        _ = try? Session(keys: keys, workers: 1, now: 0)
    }
}

/// A sequence of transport messages opened by one fresh session (the replay window sees
/// the whole sequence). Each record of the input is either
///
///     0x00, length (u16, big-endian), message       opened as it is
///     0x01, counter (u64), flip (u8), length (u8), payload
///                                                    sealed with the peer's key at `counter`,
///                                                    one byte flipped when `flip` is non-zero,
///                                                    then opened
///
/// An intact sealed message must open (or be refused as a replay or as too old) and give
/// back its payload; a flipped one must not open.
struct TransportHarness: FuzzHarness {
    static let localIndex: UInt32 = 0x1111
    static let remoteIndex: UInt32 = 0x2222
    /// The largest message a record may carry.
    private static let maximumMessage = 0xFFFF

    func seeds() -> [[UInt8]] {
        let sealed = Self.seal(counter: 0, payload: Array("a transport payload".utf8))!
        var opened: [UInt8] = [0x00, UInt8(sealed.count >> 8), UInt8(sealed.count & 0xFF)] + sealed
        for (counter, flip) in [(UInt64(5), UInt8(0)), (3, 0), (5, 0), (2000, 0), (1, 9), (UInt64.max - 9000, 0)] {
            opened += [0x01] + (0..<8).map { UInt8(truncatingIfNeeded: counter >> (56 - 8 * $0)) } + [flip, 4, 1, 2, 3, 4]
        }
        return [opened, [0x00, 0x00, 0x20] + [4, 0, 0, 0, 0x11, 0x11, 0, 0] + [UInt8](repeating: 0, count: 24)]
    }

    func run(_ input: UnsafeRawBufferPointer) {
        let receiver = Self.receivingSession()
        var reader = FuzzInput(input)
        var window = ExpectedWindow()
        while !reader.isAtEnd {
            if reader.byte() & 1 == 0 {
                let length = Int(reader.byte()) << 8 | Int(reader.byte())
                var message = Array(reader.take(length))
                let result = message.withUnsafeMutableBytes { receiver.open($0, worker: 0) }
                if case .payload = result, let counter = message.withUnsafeBytes({ TransportHeader.counter($0) }) {
                    precondition(window.isFresh(counter), "a replayed raw message opened")
                    window.record(counter)
                }
                continue
            }
            let counter = reader.uint64()
            let flip = reader.byte()
            let payload = Array(reader.take(Int(reader.byte())))
            guard var message = Self.seal(counter: counter, payload: payload) else {
                precondition(counter >= SessionLimits.rejectAfterMessages, "sealing failed below the counter limit")
                continue
            }
            if flip != 0 { message[Int(flip) % message.count] ^= flip }
            let result = message.withUnsafeMutableBytes { receiver.open($0, worker: 0) }
            if flip != 0 {
                if case .payload = result { preconditionFailure("a tampered message opened") }
                continue
            }
            switch result {
            case .payload(let offset, let length):
                precondition(window.isFresh(counter), "a replayed or too old counter opened")
                precondition(Array(message[offset..<offset + length]) == payload, "opened to a different payload")
                window.record(counter)
            case .replayed:
                precondition(!window.isFresh(counter), "a fresh counter refused as a replay")
            case .authenticationFailed, .malformed, .exhausted:
                preconditionFailure("an intact message below the counter limit refused: \(result)")
            }
        }
    }

    /// What the replay window must decide, computed the slow way: a counter is fresh unless
    /// it was accepted, or is `ReplayWindow.windowSize` or more behind the highest accepted.
    private struct ExpectedWindow {
        private var accepted = Set<UInt64>()
        private var highest: UInt64?

        func isFresh(_ counter: UInt64) -> Bool {
            guard let highest, counter < highest else { return !accepted.contains(counter) }
            return highest - counter < UInt64(ReplayWindow.windowSize) && !accepted.contains(counter)
        }

        mutating func record(_ counter: UInt64) {
            accepted.insert(counter)
            highest = max(highest ?? counter, counter)
        }
    }

    /// A fresh session of the receiving side (an empty replay window).
    static func receivingSession() -> Session {
        guard let session = try? Session(keys: SessionKeys(sendingKey: FuzzKeys.backward, receivingKey: FuzzKeys.forward,
                                                           localIndex: localIndex, remoteIndex: remoteIndex, isInitiator: false),
                                         workers: 1, now: 0)
        else { fatalError("OpenSSL refused an AES-256-GCM context") }
        return session
    }

    /// `payload` sealed by the peer's side of the session at `counter`; nil past the counter limit.
    static func seal(counter: UInt64, payload: [UInt8], flags: UInt8 = 0) -> [UInt8]? {
        guard let sender = try? Session(keys: SessionKeys(sendingKey: FuzzKeys.forward, receivingKey: FuzzKeys.backward,
                                                          localIndex: remoteIndex, remoteIndex: localIndex, isInitiator: true),
                                        workers: 1, now: 0, firstSendCounter: counter)
        else { fatalError("OpenSSL refused an AES-256-GCM context") }
        var buffer = [UInt8](repeating: 0, count: payload.count + WireFormat.transportOverhead)
        buffer.replaceSubrange(WireFormat.transportHeaderSize..<WireFormat.transportHeaderSize + payload.count, with: payload)
        let length = buffer.withUnsafeMutableBytes {
            sender.seal($0.baseAddress!, payloadLength: payload.count, worker: 0, flags: flags)
        }
        return length.map { Array(buffer[0..<$0]) }
    }
}
