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

    /// What a parser made of one message.
    private enum Outcome: Equatable {
        case accepted
        case refused(HandshakeError)

        var passedMAC1: Bool { self != .refused(.badMAC1) }
        var refusedByNoise: Bool { self == .refused(.decryptionFailed) || self == .refused(.invalidPublicKey) }
    }

    private func outcome(_ body: () throws -> Void) -> Outcome {
        do {
            try body()
            return .accepted
        } catch let error as HandshakeError {
            return .refused(error)
        } catch {
            XCTFail("not a HandshakeError: \(error)")
            return .refused(.encryptionFailed)
        }
    }

    /// A message with mac1 recomputed for `receiver`, so the Noise parsing behind mac1 is reached.
    private func remac(_ message: [UInt8], for receiver: StaticKeyPair) -> [UInt8] {
        var message = message
        let offset = message.count - 2 * WireFormat.macSize
        Handshaker.writeMAC1(in: &message, at: offset, key: Handshaker.mac1Key(for: receiver.publicKey))
        return message
    }

    func testRandomHandshakeBodiesWithValidMAC1AreRefusedByNoise() throws {
        var rng = SplitMix64(state: 0x5155_414E_5455_4D31)
        let handshaker = Handshaker(localKeys: responder)
        let initiating = Handshaker(localKeys: initiator)
        let state = try initiating.makeInitiation(peerPublicKey: responder.publicKey, senderIndex: 7, timestamp: .now()).state
        var reachedNoise = 0
        for round in 0..<5_000 {
            var initiation = randomBytes(WireFormat.initiationSize, &rng)
            initiation[0] = MessageType.initiation.rawValue
            initiation[1] = 0; initiation[2] = 0; initiation[3] = 0
            initiation = remac(initiation, for: responder)
            let initiationOutcome = outcome { _ = try initiation.withUnsafeBytes { try handshaker.consumeInitiation($0) } }
            XCTAssertNotEqual(initiationOutcome, .accepted, "random initiation accepted in round \(round)")
            if initiationOutcome.refusedByNoise { reachedNoise += 1 }
            var response = randomBytes(WireFormat.responseSize, &rng)
            response[0] = MessageType.response.rawValue
            response[1] = 0; response[2] = 0; response[3] = 0
            // Aim at the pending initiation so the Noise check, not the index check, refuses it.
            withUnsafeBytes(of: state.senderIndex.littleEndian) { response.replaceSubrange(8..<12, with: $0) }
            response = remac(response, for: initiator)
            let responseOutcome = outcome { _ = try response.withUnsafeBytes { try initiating.consumeResponse($0, state: state).keys } }
            XCTAssertNotEqual(responseOutcome, .accepted, "random response accepted in round \(round)")
            if responseOutcome.refusedByNoise { reachedNoise += 1 }
        }
        XCTAssertEqual(reachedNoise, 10_000, "every message must have been refused by the Noise layer")
    }

    func testRandomSizesAndTypesAreRefusedByTheFrameCheck() throws {
        var rng = SplitMix64(state: 0x5155_414E_5455_4D32)
        let handshaker = Handshaker(localKeys: responder)
        for round in 0..<5_000 {
            let size = Int.random(in: 0...200, using: &rng)
            guard size != WireFormat.initiationSize else { continue }
            var message = randomBytes(size, &rng)
            if !message.isEmpty { message[0] = MessageType.initiation.rawValue }
            XCTAssertThrowsError(try message.withUnsafeBytes { try handshaker.consumeInitiation($0) }, "round \(round)") {
                XCTAssertEqual($0 as? HandshakeError, .wrongSize(expected: WireFormat.initiationSize, actual: size))
            }
        }
    }

    /// Flips one byte of a valid initiation at every offset and recomputes mac1. Only the
    /// sender index (which mac1 covers but Noise does not) and mac2 (not checked unless
    /// under load) may change and still be accepted; every change to the Noise part is refused.
    func testMutatedInitiationsWithValidMAC1() throws {
        let (valid, _) = try Handshaker(localKeys: initiator)
            .makeInitiation(peerPublicKey: responder.publicKey, senderIndex: 9, timestamp: .now())
        let handshaker = Handshaker(localKeys: responder)
        XCTAssertNoThrow(try valid.withUnsafeBytes { try handshaker.consumeInitiation($0) })
        let mac1Offset = WireFormat.initiationSize - 2 * WireFormat.macSize
        let mac2Offset = WireFormat.initiationSize - WireFormat.macSize
        var rng = SplitMix64(state: 42)
        var accepted: [Int] = []
        for offset in 0..<WireFormat.initiationSize where !(mac1Offset..<mac2Offset).contains(offset) {
            var mutated = valid
            mutated[offset] ^= UInt8.random(in: 1...255, using: &rng)
            if offset < mac1Offset { mutated = remac(mutated, for: responder) }
            let result = outcome {
                let received = try mutated.withUnsafeBytes { try handshaker.consumeInitiation($0) }
                XCTAssertEqual(received.peerPublicKey, initiator.publicKey)
            }
            XCTAssertTrue(result.passedMAC1, "offset \(offset)")
            if result == .accepted { accepted.append(offset) }
        }
        XCTAssertEqual(accepted, Array(4..<8) + Array(mac2Offset..<WireFormat.initiationSize))
    }

    /// The same for a response: the responder's sender index and mac2 may change; the
    /// receiver index must name the pending initiation; the Noise part must authenticate.
    func testMutatedResponsesWithValidMAC1() throws {
        let initiating = Handshaker(localKeys: initiator)
        let (initiation, state) = try initiating.makeInitiation(
            peerPublicKey: responder.publicKey, senderIndex: 11, timestamp: .now())
        let responding = Handshaker(localKeys: responder)
        let received = try initiation.withUnsafeBytes { try responding.consumeInitiation($0) }
        let (valid, _) = try responding.makeResponse(to: received, senderIndex: 12, observedEndpoint: noObservation)
        XCTAssertNoThrow(try valid.withUnsafeBytes { try initiating.consumeResponse($0, state: state).keys })
        let mac1Offset = WireFormat.responseSize - 2 * WireFormat.macSize
        let mac2Offset = WireFormat.responseSize - WireFormat.macSize
        var rng = SplitMix64(state: 43)
        var accepted: [Int] = []
        for offset in 0..<WireFormat.responseSize where !(mac1Offset..<mac2Offset).contains(offset) {
            var mutated = valid
            mutated[offset] ^= UInt8.random(in: 1...255, using: &rng)
            if offset < mac1Offset { mutated = remac(mutated, for: initiator) }
            let result = outcome { _ = try mutated.withUnsafeBytes { try initiating.consumeResponse($0, state: state).keys } }
            XCTAssertTrue(result.passedMAC1, "offset \(offset)")
            if result == .accepted { accepted.append(offset) }
            if (8..<12).contains(offset), case .refused(let error) = result {
                guard case .wrongReceiverIndex = error else { return XCTFail("offset \(offset): \(error)") }
            }
        }
        XCTAssertEqual(accepted, Array(4..<8) + Array(mac2Offset..<WireFormat.responseSize))
    }

    func testAnyChangeWithoutRecomputingMAC1IsRefusedBeforeDiffieHellman() throws {
        let (valid, _) = try Handshaker(localKeys: initiator)
            .makeInitiation(peerPublicKey: responder.publicKey, senderIndex: 9, timestamp: .now())
        let handshaker = Handshaker(localKeys: responder)
        let mac2Offset = WireFormat.initiationSize - WireFormat.macSize
        for offset in 4..<mac2Offset {
            var mutated = valid
            mutated[offset] ^= 0x5a
            XCTAssertThrowsError(try mutated.withUnsafeBytes { try handshaker.consumeInitiation($0) }, "offset \(offset)") {
                XCTAssertEqual($0 as? HandshakeError, .badMAC1, "offset \(offset)")
            }
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
        let (response, receiverKeys) = try responding.makeResponse(to: received, senderIndex: 2, observedEndpoint: noObservation)
        let senderKeys = try response.withUnsafeBytes { try initiating.consumeResponse($0, state: state).keys }
        return (senderKeys, receiverKeys)
    }
}
