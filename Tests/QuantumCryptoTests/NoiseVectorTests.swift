import Foundation
import XCTest
@testable import QuantumCrypto

/// Reproduces the published Noise_IK_25519_AESGCM_SHA256 vectors (cacophony) byte
/// for byte: the handshake through the Noise core, transport messages through
/// `AESGCMContext` after Split.
final class NoiseVectorTests: XCTestCase {
    private struct VectorFile: Decodable {
        let vectors: [Vector]
    }

    private struct Vector: Decodable {
        struct Message: Decodable {
            let payload: String
            let ciphertext: String
        }
        let protocol_name: String
        let init_prologue: String
        let init_static: String
        let init_ephemeral: String
        let init_remote_static: String
        let resp_prologue: String
        let resp_static: String
        let resp_ephemeral: String
        let handshake_hash: String
        let messages: [Message]
    }

    /// `<repo>/../shared/vectors/…`, found from this file: Tests/QuantumCryptoTests/ is two levels below the repo.
    private static let vectorFile = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .appendingPathComponent("../../../shared/vectors/noise-ik-25519-aesgcm-sha256.json")
        .standardizedFileURL

    func testIKVectorsReproducedByteForByte() throws {
        guard let data = FileManager.default.contents(atPath: Self.vectorFile.path) else {
            XCTFail("Noise test vectors not found at \(Self.vectorFile.path); the shared/ directory must sit beside the repository")
            return
        }
        let file = try JSONDecoder().decode(VectorFile.self, from: data)
        guard let vector = file.vectors.first(where: { $0.protocol_name == NoiseIKHandshake.protocolName }) else {
            XCTFail("no \(NoiseIKHandshake.protocolName) entry in \(Self.vectorFile.path)")
            return
        }
        XCTAssertEqual(vector.messages.count, 6, "expected 2 handshake and 4 transport messages")

        let initiatorStatic = try StaticKeyPair(privateKey: hex(vector.init_static))
        let responderStatic = try StaticKeyPair(privateKey: hex(vector.resp_static))
        XCTAssertEqual(responderStatic.publicKey, hex(vector.init_remote_static))
        var initiator = NoiseIKHandshake(
            initiator: initiatorStatic, responderStatic: hex(vector.init_remote_static), prologue: hex(vector.init_prologue))
        var responder = NoiseIKHandshake(responder: responderStatic, prologue: hex(vector.resp_prologue))

        // Message 1: -> e, es, s, ss
        let payload1 = hex(vector.messages[0].payload)
        let message1 = try initiator.writeInitiation(
            payload: payload1,
            ephemeral: StaticKeyPair(privateKey: hex(vector.init_ephemeral)).agreementKey)
        XCTAssertEqual(hexString(message1), vector.messages[0].ciphertext, "message 1")
        XCTAssertEqual(try responder.readInitiation(message1), payload1)
        XCTAssertEqual(responder.remoteStatic, initiatorStatic.publicKey)

        // Message 2: <- e, ee, se
        let payload2 = hex(vector.messages[1].payload)
        let message2 = try responder.writeResponse(
            payload: payload2,
            ephemeral: StaticKeyPair(privateKey: hex(vector.resp_ephemeral)).agreementKey)
        XCTAssertEqual(hexString(message2), vector.messages[1].ciphertext, "message 2")
        XCTAssertEqual(try initiator.readResponse(message2), payload2)

        XCTAssertEqual(hexString(initiator.handshakeHash), vector.handshake_hash, "initiator handshake hash")
        XCTAssertEqual(hexString(responder.handshakeHash), vector.handshake_hash, "responder handshake hash")

        // Transport: initiator -> responder with the first split key, responder -> initiator
        // with the second, each direction counting from 0, empty additional data.
        let initiatorKeys = initiator.split()
        let responderKeys = responder.split()
        let initiatorSend = try initiatorKeys.initiatorToResponder.withUnsafeBytes { try AESGCMContext(key: $0) }
        let initiatorReceive = try initiatorKeys.responderToInitiator.withUnsafeBytes { try AESGCMContext(key: $0) }
        let responderSend = try responderKeys.responderToInitiator.withUnsafeBytes { try AESGCMContext(key: $0) }
        let responderReceive = try responderKeys.initiatorToResponder.withUnsafeBytes { try AESGCMContext(key: $0) }

        var counters: (initiator: UInt64, responder: UInt64) = (0, 0)
        for (number, message) in vector.messages.enumerated().dropFirst(2) {
            let payload = hex(message.payload)
            let fromInitiator = (number - 2) % 2 == 0
            let counter = fromInitiator ? counters.initiator : counters.responder
            let sealed = sealBytes(fromInitiator ? initiatorSend : responderSend, counter: counter, payload)
            XCTAssertEqual(hexString(sealed), message.ciphertext, "message \(number + 1)")
            XCTAssertEqual(openBytes(fromInitiator ? responderReceive : initiatorReceive, counter: counter, sealed), payload,
                           "message \(number + 1) opened by the peer")
            if fromInitiator { counters.initiator += 1 } else { counters.responder += 1 }
        }
    }
}
