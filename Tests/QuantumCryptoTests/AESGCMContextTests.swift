import XCTest
@testable import QuantumCrypto

/// Known-answer tests of the OpenSSL-backed in-place AES-256-GCM, from the
/// McGrew–Viega GCM specification's AES-256 test cases (13, 14 and 16).
final class AESGCMContextTests: XCTestCase {
    func testTestCase13EmptyPlaintextZeroKey() throws {
        let context = try [UInt8](repeating: 0, count: 32).withUnsafeBytes { try AESGCMContext(key: $0) }
        // IV 0^96 is the Noise nonce for counter 0.
        XCTAssertEqual(hexString(sealBytes(context, counter: 0, [])), "530f8afbc74536b9a963b4f1c4cb738b")
    }

    func testTestCase14OneZeroBlock() throws {
        let context = try [UInt8](repeating: 0, count: 32).withUnsafeBytes { try AESGCMContext(key: $0) }
        let sealed = sealBytes(context, counter: 0, [UInt8](repeating: 0, count: 16))
        XCTAssertEqual(hexString(sealed), "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919")
        XCTAssertEqual(openBytes(context, counter: 0, sealed), [UInt8](repeating: 0, count: 16))
    }

    func testTestCase16WithAdditionalData() throws {
        let key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
        let plaintext = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
            + "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
        let additionalData = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
        let nonce = hex("cafebabefacedbaddecaf888")
        let expectedCiphertext = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
            + "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
        let expectedTag = "76fc6ece0f4e1768cddf8853bb2d551b"

        let context = try key.withUnsafeBytes { try AESGCMContext(key: $0) }
        var data = plaintext
        var tag = [UInt8](repeating: 0, count: AESGCMContext.tagSize)
        let sealed = additionalData.withUnsafeBytes { ad in
            data.withUnsafeMutableBytes { buffer in
                tag.withUnsafeMutableBytes { context.seal(nonce: nonce, additionalData: ad, inPlace: buffer, tag: $0.baseAddress!) }
            }
        }
        XCTAssertTrue(sealed)
        XCTAssertEqual(hexString(data), expectedCiphertext)
        XCTAssertEqual(hexString(tag), expectedTag)

        // The same context opens it again (the key schedule is reused, only the IV changes).
        let opened = additionalData.withUnsafeBytes { ad in
            data.withUnsafeMutableBytes { buffer in
                tag.withUnsafeBytes { context.open(nonce: nonce, additionalData: ad, inPlace: buffer, tag: $0.baseAddress!) }
            }
        }
        XCTAssertTrue(opened)
        XCTAssertEqual(data, plaintext)
    }

    func testTamperingIsDetected() throws {
        let context = try [UInt8](repeating: 7, count: 32).withUnsafeBytes { try AESGCMContext(key: $0) }
        let plaintext = Array("attack at dawn".utf8)
        let additionalData: [UInt8] = [1, 2, 3]
        let sealed = sealBytes(context, counter: 5, additionalData: additionalData, plaintext)
        XCTAssertEqual(openBytes(context, counter: 5, additionalData: additionalData, sealed), plaintext)

        var flippedBody = sealed
        flippedBody[0] ^= 1
        XCTAssertNil(openBytes(context, counter: 5, additionalData: additionalData, flippedBody))
        var flippedTag = sealed
        flippedTag[sealed.count - 1] ^= 0x80
        XCTAssertNil(openBytes(context, counter: 5, additionalData: additionalData, flippedTag))
        XCTAssertNil(openBytes(context, counter: 5, additionalData: [1, 2, 4], sealed), "other additional data")
        XCTAssertNil(openBytes(context, counter: 6, additionalData: additionalData, sealed), "other counter")
        // A failed open leaves the context usable.
        XCTAssertEqual(openBytes(context, counter: 5, additionalData: additionalData, sealed), plaintext)
    }

    func testCounterIsBigEndianAfterFourZeroBytes() throws {
        let key = [UInt8](repeating: 0x42, count: 32)
        let context = try key.withUnsafeBytes { try AESGCMContext(key: $0) }
        let counter: UInt64 = 0x0102_0304_0506_0708
        var data = Array("nonce layout".utf8)
        var tag = [UInt8](repeating: 0, count: AESGCMContext.tagSize)
        let nonce: [UInt8] = [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
        XCTAssertTrue(data.withUnsafeMutableBytes { buffer in
            tag.withUnsafeMutableBytes { context.seal(nonce: nonce, additionalData: UnsafeRawBufferPointer(start: nil, count: 0), inPlace: buffer, tag: $0.baseAddress!) }
        })
        XCTAssertEqual(sealBytes(context, counter: counter, Array("nonce layout".utf8)), data + tag)
    }

    func testWrongKeyLengthAndWipe() throws {
        XCTAssertThrowsError(try [UInt8](repeating: 0, count: 16).withUnsafeBytes { try AESGCMContext(key: $0) }) { error in
            XCTAssertEqual(error as? CryptoError, .invalidKeyLength(what: "AES-256-GCM key", expected: 32, actual: 16))
        }
        let context = try [UInt8](repeating: 1, count: 32).withUnsafeBytes { try AESGCMContext(key: $0) }
        let sealed = sealBytes(context, counter: 0, [9, 9])
        context.wipe()
        XCTAssertNil(openBytes(context, counter: 0, sealed), "a wiped context opens nothing")
    }
}
