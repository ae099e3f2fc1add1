import XCTest
@testable import QuantumCrypto

final class KeyAndTimestampTests: XCTestCase {
    func testStaticKeyPairFromPrivateKey() throws {
        // RFC 7748 §6.1: Alice's private key and public key.
        let pair = try StaticKeyPair(privateKey: hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
        XCTAssertEqual(hexString(pair.publicKey), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        let generated = StaticKeyPair.generate()
        XCTAssertEqual(try StaticKeyPair(privateKey: generated.privateKey).publicKey, generated.publicKey)
        XCTAssertNotEqual(StaticKeyPair.generate().privateKey, generated.privateKey)
    }

    func testWrongPrivateKeyLength() {
        XCTAssertThrowsError(try StaticKeyPair(privateKey: [1, 2, 3])) { error in
            XCTAssertEqual((error as? CryptoError)?.description, "Curve25519 private key must be 32 bytes, got 3")
        }
    }

    func testBase64() throws {
        let key = [UInt8](0..<32)
        XCTAssertEqual(try KeyEncoding.decode(KeyEncoding.base64(key)), key)
        XCTAssertThrowsError(try KeyEncoding.decode("AAEC"))
        XCTAssertThrowsError(try KeyEncoding.decode("not base64!"))
    }

    func testTAI64NBytesAndOrder() throws {
        let stamp = TAI64N(unixSeconds: 1, nanoseconds: 2)
        XCTAssertEqual(stamp.bytes, [0x40, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2])
        XCTAssertEqual(TAI64N(bytes: stamp.bytes), stamp)
        XCTAssertNil(TAI64N(bytes: [UInt8](repeating: 0, count: 11)))
        XCTAssertLessThan(TAI64N(unixSeconds: 1, nanoseconds: 999_999_999), TAI64N(unixSeconds: 2, nanoseconds: 0))
        XCTAssertLessThan(TAI64N(unixSeconds: 2, nanoseconds: 0), TAI64N(unixSeconds: 2, nanoseconds: 1))
        let now = TAI64N.now()
        XCTAssertGreaterThan(now, TAI64N(unixSeconds: 1_700_000_000, nanoseconds: 0))
        XCTAssertLessThanOrEqual(now, TAI64N.now())
    }
}
