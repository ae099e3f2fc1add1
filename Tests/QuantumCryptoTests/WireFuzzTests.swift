import XCTest
@testable import QuantumCrypto

/// A small deterministic generator, so a failing input can be reproduced from the seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Everything a network peer can send reaches these parsers: random and mutated
/// input must be refused, never crash, and never be taken for a valid message.
final class WireFuzzTests: XCTestCase {
    private let responder = StaticKeyPair.generate()
    private let initiator = StaticKeyPair.generate()

    private func randomBytes(_ count: Int, _ rng: inout SplitMix64) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    func testRandomHandshakeMessagesAreRefused() throws {
        var rng = SplitMix64(state: 0x5155_414E_5455_4D31)
        let handshaker = Handshaker(localKeys: responder)
        let state = try Handshaker(localKeys: initiator)
            .makeInitiation(peerPublicKey: responder.publicKey, senderIndex: 7, timestamp: .now()).state
        for round in 0..<20_000 {
            let size = round % 3 == 0 ? [WireFormat.initiationSize, WireFormat.responseSize].randomElement(using: &rng)!
                : Int.random(in: 0...200, using: &rng)
            var message = randomBytes(size, &rng)
            if !message.isEmpty { message[0] = UInt8.random(in: 1...2, using: &rng) }
            XCTAssertThrowsError(try message.withUnsafeBytes { try handshaker.consumeInitiation($0) }, "round \(round)")
            XCTAssertThrowsError(try message.withUnsafeBytes { try handshaker.consumeResponse($0, state: state) },
                                 "round \(round)")
        }
    }

    func testEveryMutationOfAnInitiationBeforeMAC2IsRefused() throws {
        let (valid, _) = try Handshaker(localKeys: initiator)
            .makeInitiation(peerPublicKey: responder.publicKey, senderIndex: 9, timestamp: .now())
        let handshaker = Handshaker(localKeys: responder)
        XCTAssertNoThrow(try valid.withUnsafeBytes { try handshaker.consumeInitiation($0) })
        let mac2Offset = WireFormat.initiationSize - WireFormat.macSize
        var rng = SplitMix64(state: 42)
        for offset in 0..<mac2Offset {
            var mutated = valid
            mutated[offset] ^= UInt8.random(in: 1...255, using: &rng)
            XCTAssertThrowsError(try mutated.withUnsafeBytes { try handshaker.consumeInitiation($0) }, "offset \(offset)")
        }
        for cut in [0, 1, 40, WireFormat.initiationSize - 1] {
            XCTAssertThrowsError(try Array(valid[0..<cut]).withUnsafeBytes { try handshaker.consumeInitiation($0) })
        }
        XCTAssertThrowsError(try (valid + [0]).withUnsafeBytes { try handshaker.consumeInitiation($0) })
    }

    func testEveryMutationOfAResponseBeforeMAC2IsRefused() throws {
        let initiating = Handshaker(localKeys: initiator)
        let (initiation, state) = try initiating.makeInitiation(
            peerPublicKey: responder.publicKey, senderIndex: 11, timestamp: .now())
        let responding = Handshaker(localKeys: responder)
        let received = try initiation.withUnsafeBytes { try responding.consumeInitiation($0) }
        let (valid, _) = try responding.makeResponse(to: received, senderIndex: 12)
        XCTAssertNoThrow(try valid.withUnsafeBytes { try initiating.consumeResponse($0, state: state) })
        let mac2Offset = WireFormat.responseSize - WireFormat.macSize
        var rng = SplitMix64(state: 43)
        for offset in 0..<mac2Offset {
            var mutated = valid
            mutated[offset] ^= UInt8.random(in: 1...255, using: &rng)
            XCTAssertThrowsError(try mutated.withUnsafeBytes { try initiating.consumeResponse($0, state: state) },
                                 "offset \(offset)")
        }
    }

    func testRandomTransportMessagesNeverOpen() throws {
        let keys = try SessionKeysFixture.pair()
        let session = try Session(keys: keys.receiver, workers: 1, now: 0)
        var rng = SplitMix64(state: 44)
        for round in 0..<20_000 {
            var message = randomBytes(Int.random(in: 0...120, using: &rng), &rng)
            if message.count >= 8 {
                message[0] = MessageType.transport.rawValue
                message[1] = 0
                message[2] = 0
                message[3] = 0
                // Aim at the session so the cryptographic check, not the index check, refuses it.
                withUnsafeBytes(of: session.localIndex.littleEndian) { message.replaceSubrange(4..<8, with: $0) }
            }
            let result = message.withUnsafeMutableBytes { session.open($0, worker: 0) }
            if case .payload = result { XCTFail("random message opened in round \(round)") }
        }
    }
}

/// Session keys for both ends of one real handshake.
enum SessionKeysFixture {
    static func pair() throws -> (sender: SessionKeys, receiver: SessionKeys) {
        let initiatorKeys = StaticKeyPair.generate()
        let responderKeys = StaticKeyPair.generate()
        let initiating = Handshaker(localKeys: initiatorKeys)
        let responding = Handshaker(localKeys: responderKeys)
        let (initiation, state) = try initiating.makeInitiation(
            peerPublicKey: responderKeys.publicKey, senderIndex: 1, timestamp: .now())
        let received = try initiation.withUnsafeBytes { try responding.consumeInitiation($0) }
        let (response, receiverKeys) = try responding.makeResponse(to: received, senderIndex: 2)
        let senderKeys = try response.withUnsafeBytes { try initiating.consumeResponse($0, state: state) }
        return (senderKeys, receiverKeys)
    }
}
