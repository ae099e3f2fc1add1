import XCTest
@testable import QuantumCrypto

/// An observed endpoint for responses whose payload the test does not look at.
let noObservation = [UInt8](repeating: 0, count: WireFormat.observedEndpointSize)

/// Handshake transcripts through the framed wire messages.
final class HandshakeTests: XCTestCase {
    private let alice = StaticKeyPair.generate()
    private let bob = StaticKeyPair.generate()
    private let timestamp = TAI64N(unixSeconds: 1_700_000_000, nanoseconds: 123_456_789)

    private func consume(_ handshaker: Handshaker, initiation: [UInt8]) throws -> ReceivedInitiation {
        try initiation.withUnsafeBytes { try handshaker.consumeInitiation($0) }
    }

    private func consume(_ handshaker: Handshaker, response: [UInt8], state: InitiatorState) throws -> SessionKeys {
        try response.withUnsafeBytes { try handshaker.consumeResponse($0, state: state).keys }
    }

    func testResponseCarriesTheObservedEndpointAuthenticated() throws {
        let aliceSide = Handshaker(localKeys: alice)
        let bobSide = Handshaker(localKeys: bob)
        let (initiation, state) = try aliceSide.makeInitiation(peerPublicKey: bob.publicKey, senderIndex: 5, timestamp: timestamp)
        let observed = (0..<WireFormat.observedEndpointSize).map { UInt8($0 * 7 + 1) }
        let (response, _) = try bobSide.makeResponse(to: consume(bobSide, initiation: initiation), senderIndex: 6,
                                                      observedEndpoint: observed)
        XCTAssertEqual(try response.withUnsafeBytes { try aliceSide.consumeResponse($0, state: state) }.observedEndpoint, observed)
        // Not in the clear, and a flipped bit in it fails the handshake.
        XCTAssertNil(response.firstRange(of: observed))
        var tampered = response
        tampered[WireFormat.responseNoiseOffset + 32] ^= 1
        Handshaker.writeMAC1(in: &tampered, at: WireFormat.responseMAC1Offset, key: Handshaker.mac1Key(for: alice.publicKey))
        assertRejected(.decryptionFailed) { _ = try tampered.withUnsafeBytes { try aliceSide.consumeResponse($0, state: state) } }
        assertRejected(.wrongSize(expected: WireFormat.observedEndpointSize, actual: 4)) {
            _ = try bobSide.makeResponse(to: consume(bobSide, initiation: initiation), senderIndex: 6, observedEndpoint: [1, 2, 3, 4])
        }
    }

    private func assertRejected(
        _ expected: HandshakeError, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void
    ) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual(error as? HandshakeError, expected, file: file, line: line)
        }
    }

    func testFullHandshakeDerivesMatchingKeysAndFraming() throws {
        let initiatorSide = Handshaker(localKeys: alice)
        let responderSide = Handshaker(localKeys: bob)

        let (initiation, state) = try initiatorSide.makeInitiation(peerPublicKey: bob.publicKey, senderIndex: 0x0A0B_0C0D, timestamp: timestamp)
        XCTAssertEqual(initiation.count, WireFormat.initiationSize)
        XCTAssertEqual(Array(initiation[0..<8]), [1, 0, 0, 0, 0x0D, 0x0C, 0x0B, 0x0A], "type, reserved, little-endian index")
        XCTAssertEqual(Array(initiation[132..<148]), [UInt8](repeating: 0, count: 16), "mac2 is zero for now")
        XCTAssertNotEqual(Array(initiation[116..<132]), [UInt8](repeating: 0, count: 16), "mac1 is set")
        initiation.withUnsafeBytes { XCTAssertEqual(MessageType(of: $0), .initiation) }

        let received = try consume(responderSide, initiation: initiation)
        XCTAssertEqual(received.peerPublicKey, alice.publicKey)
        XCTAssertEqual(received.timestamp, timestamp)
        XCTAssertEqual(received.senderIndex, 0x0A0B_0C0D)

        let (response, responderKeys) = try responderSide.makeResponse(to: received, senderIndex: 77, observedEndpoint: noObservation)
        XCTAssertEqual(response.count, WireFormat.responseSize)
        XCTAssertEqual(Array(response[0..<12]), [2, 0, 0, 0, 77, 0, 0, 0, 0x0D, 0x0C, 0x0B, 0x0A])
        XCTAssertEqual(Array(response[(WireFormat.responseSize - WireFormat.macSize)...]), [UInt8](repeating: 0, count: 16))

        let initiatorKeys = try consume(initiatorSide, response: response, state: state)
        XCTAssertEqual(keyBytes(initiatorKeys.sendingKey), keyBytes(responderKeys.receivingKey))
        XCTAssertEqual(keyBytes(initiatorKeys.receivingKey), keyBytes(responderKeys.sendingKey))
        XCTAssertNotEqual(keyBytes(initiatorKeys.sendingKey), keyBytes(initiatorKeys.receivingKey))
        XCTAssertEqual(keyBytes(initiatorKeys.sendingKey).count, 32)
        XCTAssertEqual(initiatorKeys.localIndex, 0x0A0B_0C0D)
        XCTAssertEqual(initiatorKeys.remoteIndex, 77)
        XCTAssertTrue(initiatorKeys.isInitiator)
        XCTAssertEqual(responderKeys.localIndex, 77)
        XCTAssertEqual(responderKeys.remoteIndex, 0x0A0B_0C0D)
        XCTAssertFalse(responderKeys.isInitiator)

        // Transport both ways through sessions built from the keys.
        let aliceSession = try Session(keys: initiatorKeys, workers: 1, now: 0)
        let bobSession = try Session(keys: responderKeys, workers: 1, now: 0)
        XCTAssertEqual(roundTrip(Array("hello bob".utf8), from: aliceSession, to: bobSession), Array("hello bob".utf8))
        XCTAssertEqual(roundTrip(Array("hello alice".utf8), from: bobSession, to: aliceSession), Array("hello alice".utf8))
    }

    func testTwoHandshakesGiveDifferentKeys() throws {
        let first = try SessionPair.make(alice: alice, bob: bob)
        let second = try SessionPair.make(alice: alice, bob: bob)
        XCTAssertNotEqual(keyBytes(first.aliceKeys.sendingKey), keyBytes(second.aliceKeys.sendingKey))
    }

    func testBadMAC1IsRejectedBeforeAnyDiffieHellman() throws {
        let responderSide = Handshaker(localKeys: bob)
        var (initiation, _) = try Handshaker(localKeys: alice).makeInitiation(peerPublicKey: bob.publicKey, senderIndex: 1, timestamp: timestamp)

        var flippedMAC = initiation
        flippedMAC[WireFormat.initiationMAC1Offset] ^= 1
        assertRejected(.badMAC1) { _ = try self.consume(responderSide, initiation: flippedMAC) }

        // A low-order ephemeral key would fail the DH. With a bad mac1 the error is
        // badMAC1, so mac1 is checked first; with a correct mac1 the DH runs and fails.
        initiation.replaceSubrange(8..<40, with: [UInt8](repeating: 0, count: 32))
        assertRejected(.badMAC1) { _ = try self.consume(responderSide, initiation: initiation) }
        Handshaker.writeMAC1(in: &initiation, at: WireFormat.initiationMAC1Offset, key: Handshaker.mac1Key(for: bob.publicKey))
        assertRejected(.invalidPublicKey) { _ = try self.consume(responderSide, initiation: initiation) }
    }

    func testTamperedInitiationIsRejected() throws {
        let responderSide = Handshaker(localKeys: bob)
        let (initiation, _) = try Handshaker(localKeys: alice).makeInitiation(peerPublicKey: bob.publicKey, senderIndex: 1, timestamp: timestamp)
        for offset in [45, 100] {  // inside the encrypted static key, inside the encrypted timestamp
            var tampered = initiation
            tampered[offset] ^= 0x40
            assertRejected(.badMAC1) { _ = try self.consume(responderSide, initiation: tampered) }
            Handshaker.writeMAC1(in: &tampered, at: WireFormat.initiationMAC1Offset, key: Handshaker.mac1Key(for: bob.publicKey))
            assertRejected(.decryptionFailed) { _ = try self.consume(responderSide, initiation: tampered) }
        }
    }

    func testInitiationForAnotherResponderIsRejected() throws {
        let carol = StaticKeyPair.generate()
        var (initiation, _) = try Handshaker(localKeys: alice).makeInitiation(peerPublicKey: carol.publicKey, senderIndex: 1, timestamp: timestamp)
        let bobSide = Handshaker(localKeys: bob)
        assertRejected(.badMAC1) { _ = try self.consume(bobSide, initiation: initiation) }
        // Even with a mac1 made for bob, the Noise encryption is bound to carol's key.
        Handshaker.writeMAC1(in: &initiation, at: WireFormat.initiationMAC1Offset, key: Handshaker.mac1Key(for: bob.publicKey))
        assertRejected(.decryptionFailed) { _ = try self.consume(bobSide, initiation: initiation) }
    }

    func testUnknownInitiatorIsDecodedAndReported() throws {
        let mallory = StaticKeyPair.generate()
        let (initiation, _) = try Handshaker(localKeys: mallory).makeInitiation(peerPublicKey: bob.publicKey, senderIndex: 9, timestamp: timestamp)
        let received = try consume(Handshaker(localKeys: bob), initiation: initiation)
        XCTAssertEqual(received.peerPublicKey, mallory.publicKey, "the Node sees who it is and can refuse")
        XCTAssertNotEqual(received.peerPublicKey, alice.publicKey)
    }

    func testResponseForTheWrongStateIsRejected() throws {
        let aliceSide = Handshaker(localKeys: alice)
        let bobSide = Handshaker(localKeys: bob)
        let (first, _) = try aliceSide.makeInitiation(peerPublicKey: bob.publicKey, senderIndex: 5, timestamp: timestamp)
        let (_, secondState) = try aliceSide.makeInitiation(peerPublicKey: bob.publicKey, senderIndex: 5, timestamp: timestamp)
        let (_, otherIndexState) = try aliceSide.makeInitiation(peerPublicKey: bob.publicKey, senderIndex: 6, timestamp: timestamp)
        let (response, _) = try bobSide.makeResponse(to: consume(bobSide, initiation: first), senderIndex: 8, observedEndpoint: noObservation)

        assertRejected(.decryptionFailed) { _ = try self.consume(aliceSide, response: response, state: secondState) }
        assertRejected(.wrongReceiverIndex(expected: 6, actual: 5)) {
            _ = try self.consume(aliceSide, response: response, state: otherIndexState)
        }
    }

    func testTamperedOrMisaddressedResponseIsRejected() throws {
        let aliceSide = Handshaker(localKeys: alice)
        let bobSide = Handshaker(localKeys: bob)
        let (initiation, state) = try aliceSide.makeInitiation(peerPublicKey: bob.publicKey, senderIndex: 5, timestamp: timestamp)
        let (response, _) = try bobSide.makeResponse(to: consume(bobSide, initiation: initiation), senderIndex: 8, observedEndpoint: noObservation)

        var tampered = response
        tampered[50] ^= 1
        assertRejected(.badMAC1) { _ = try self.consume(aliceSide, response: tampered, state: state) }
        Handshaker.writeMAC1(in: &tampered, at: WireFormat.responseMAC1Offset, key: Handshaker.mac1Key(for: alice.publicKey))
        assertRejected(.decryptionFailed) { _ = try self.consume(aliceSide, response: tampered, state: state) }

        // The state survives failed attempts: the genuine response still completes.
        XCTAssertNoThrow(try consume(aliceSide, response: response, state: state))

        // A response checked by a node it was not addressed to fails mac1.
        let carolSide = Handshaker(localKeys: StaticKeyPair.generate())
        assertRejected(.badMAC1) { _ = try self.consume(carolSide, response: response, state: state) }
    }

    func testSizeTypeAndReservedBytes() throws {
        let bobSide = Handshaker(localKeys: bob)
        let (initiation, state) = try Handshaker(localKeys: alice).makeInitiation(peerPublicKey: bob.publicKey, senderIndex: 5, timestamp: timestamp)
        assertRejected(.wrongSize(expected: 148, actual: 147)) { _ = try self.consume(bobSide, initiation: Array(initiation.dropLast())) }
        assertRejected(.wrongSize(expected: 148, actual: 0)) { _ = try self.consume(bobSide, initiation: []) }
        var wrongType = initiation
        wrongType[0] = 2
        assertRejected(.wrongType(expected: 1, actual: 2)) { _ = try self.consume(bobSide, initiation: wrongType) }
        var reserved = initiation
        reserved[2] = 1
        assertRejected(.reservedBytesNotZero) { _ = try self.consume(bobSide, initiation: reserved) }
        assertRejected(.wrongSize(expected: WireFormat.responseSize, actual: 148)) {
            _ = try self.consume(Handshaker(localKeys: self.alice), response: initiation, state: state)
        }
    }

    func testLowOrderOrMalformedPeerKeyIsRefused() {
        let aliceSide = Handshaker(localKeys: alice)
        assertRejected(.invalidPublicKey) {
            _ = try aliceSide.makeInitiation(peerPublicKey: [UInt8](repeating: 0, count: 32), senderIndex: 1, timestamp: self.timestamp)
        }
        assertRejected(.invalidPublicKey) {
            _ = try aliceSide.makeInitiation(peerPublicKey: [1, 2, 3], senderIndex: 1, timestamp: self.timestamp)
        }
    }

    func testErrorDescriptionsAreReadable() {
        XCTAssertEqual(HandshakeError.wrongSize(expected: 148, actual: 3).description, "handshake message has 3 bytes, expected 148")
        XCTAssertEqual(HandshakeError.badMAC1.description, "handshake message has a bad mac1")
    }
}

/// Two sessions from one real handshake between `alice` (initiator) and `bob`.
struct SessionPair {
    let aliceKeys: SessionKeys
    let bobKeys: SessionKeys

    static func make(alice: StaticKeyPair = .generate(), bob: StaticKeyPair = .generate()) throws -> SessionPair {
        let aliceSide = Handshaker(localKeys: alice)
        let bobSide = Handshaker(localKeys: bob)
        let (initiation, state) = try aliceSide.makeInitiation(peerPublicKey: bob.publicKey, senderIndex: 1111, timestamp: .now())
        let received = try initiation.withUnsafeBytes { try bobSide.consumeInitiation($0) }
        let (response, bobKeys) = try bobSide.makeResponse(to: received, senderIndex: 2222, observedEndpoint: noObservation)
        let aliceKeys = try response.withUnsafeBytes { try aliceSide.consumeResponse($0, state: state).keys }
        return SessionPair(aliceKeys: aliceKeys, bobKeys: bobKeys)
    }
}

/// Seals `payload` with `sender` (worker 0) and opens it with `receiver`; nil unless it opens.
func roundTrip(_ payload: [UInt8], from sender: Session, to receiver: Session) -> [UInt8]? {
    var buffer = [UInt8](repeating: 0, count: payload.count + WireFormat.transportOverhead)
    buffer.replaceSubrange(WireFormat.transportHeaderSize..<(WireFormat.transportHeaderSize + payload.count), with: payload)
    guard let length = buffer.withUnsafeMutableBytes({ sender.seal($0.baseAddress!, payloadLength: payload.count, worker: 0, flags: 0) }) else {
        return nil
    }
    let result = buffer.withUnsafeMutableBytes { receiver.open(UnsafeMutableRawBufferPointer(rebasing: $0[0..<length]), worker: 0) }
    guard case let .payload(offset, count) = result else { return nil }
    return Array(buffer[offset..<(offset + count)])
}
