import Foundation
import XCTest
@testable import QuantumCrypto

/// Private and session keys never reach text: every value that holds one renders (as a log
/// line or error would interpolate it, as `debugPrint` and `dump` show it) without its bytes
/// in any of the forms a key is written in — base64, hex, or a list of byte values.
final class KeyRedactionTests: XCTestCase {
    private func renderings(_ value: Any) -> [String] {
        var dumped = ""
        dump(value, to: &dumped)
        return [String(describing: value), String(reflecting: value), "\(value)", dumped]
    }

    private func forms(of key: [UInt8]) -> [String] {
        [KeyEncoding.base64(key), key.map { String(format: "%02x", $0) }.joined(),
         key.prefix(4).map(String.init).joined(separator: ", "), key.prefix(4).map(String.init).joined(separator: "\n")]
    }

    func testNoKeyBytesInAnyRenderingOfKeysHandshakesOrSessions() throws {
        let alice = StaticKeyPair.generate()
        let bob = StaticKeyPair.generate()
        let (initiation, pending) = try Handshaker(localKeys: alice).makeInitiation(
            peerPublicKey: bob.publicKey, senderIndex: 7, timestamp: .now())
        let received = try initiation.withUnsafeBytes { try Handshaker(localKeys: bob).consumeInitiation($0) }
        let (response, responderKeys) = try Handshaker(localKeys: bob).makeResponse(to: received, senderIndex: 9,
                                                                                     observedEndpoint: noObservation)
        let initiatorKeys = try response.withUnsafeBytes { try Handshaker(localKeys: alice).consumeResponse($0, state: pending) }.keys
        let session = try Session(keys: initiatorKeys, workers: 1, now: 0)
        let snapshot = try XCTUnwrap(session.snapshot(now: 5))
        let half = Session.Snapshot.keyMaterialSize / 2
        let secrets = [alice.privateKey, bob.privateKey, Array(snapshot.keyMaterial[..<half]), Array(snapshot.keyMaterial[half...])]

        let values: [(String, Any)] = [
            ("key pair", alice), ("handshaker", Handshaker(localKeys: alice)), ("pending initiation", pending),
            ("received initiation", received), ("responder's session keys", responderKeys),
            ("initiator's session keys", initiatorKeys), ("session", session), ("snapshot", snapshot),
            ("a value holding them", (alice, [snapshot], Optional(initiatorKeys))),
        ]
        for (name, value) in values {
            for text in renderings(value) {
                for secret in secrets {
                    for form in forms(of: secret) {
                        XCTAssertFalse(text.contains(form), "\(name) shows key bytes (\(form)) in: \(text)")
                    }
                }
            }
        }
        // The public parts stay visible, so the renderings still say something.
        XCTAssertTrue(String(describing: alice).contains(KeyEncoding.base64(alice.publicKey)))
        XCTAssertTrue(String(describing: session).contains("localIndex: 7"))
    }
}
