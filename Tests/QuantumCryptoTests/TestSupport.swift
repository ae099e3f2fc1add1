import XCTest
@testable import QuantumCrypto

/// Bytes from a hex string; traps on malformed input (test data is fixed).
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8)
    precondition(digits.count % 2 == 0, "odd-length hex")
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<($0 + 2)], as: UTF8.self), radix: 16)! }
}

/// Lowercase hex of `bytes`, for readable assertion failures.
func hexString(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

/// Seals `plaintext` with `context` and returns ciphertext || tag.
func sealBytes(_ context: AESGCMContext, counter: UInt64, additionalData: [UInt8] = [], _ plaintext: [UInt8],
               file: StaticString = #filePath, line: UInt = #line) -> [UInt8] {
    var data = plaintext
    var tag = [UInt8](repeating: 0, count: AESGCMContext.tagSize)
    let ok = additionalData.withUnsafeBytes { ad in
        data.withUnsafeMutableBytes { buffer in
            tag.withUnsafeMutableBytes { context.seal(counter: counter, additionalData: ad, inPlace: buffer, tag: $0.baseAddress!) }
        }
    }
    XCTAssertTrue(ok, "seal failed", file: file, line: line)
    return data + tag
}

/// Opens ciphertext || tag with `context`; nil if it does not authenticate.
func openBytes(_ context: AESGCMContext, counter: UInt64, additionalData: [UInt8] = [], _ sealed: [UInt8]) -> [UInt8]? {
    var data = Array(sealed.dropLast(AESGCMContext.tagSize))
    let tag = Array(sealed.suffix(AESGCMContext.tagSize))
    let ok = additionalData.withUnsafeBytes { ad in
        data.withUnsafeMutableBytes { buffer in
            tag.withUnsafeBytes { context.open(counter: counter, additionalData: ad, inPlace: buffer, tag: $0.baseAddress!) }
        }
    }
    return ok ? data : nil
}

/// Bytes of a swift-crypto key, for comparisons in tests.
func keyBytes(_ key: some ContiguousBytes) -> [UInt8] {
    key.withUnsafeBytes { Array($0) }
}
