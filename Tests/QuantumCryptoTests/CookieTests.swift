import Crypto
import XCTest

@testable import QuantumCrypto

/// Cookies and mac2: the allocation-free HMAC, cookie replies and the mac2 they enable.
final class CookieTests: XCTestCase {
    private let replier = StaticKeyPair.generate()
    private let sender = StaticKeyPair.generate()
    private let masterSecret = [UInt8](repeating: 7, count: CookieResponder.masterSecretSize)
    /// Two sender identities (address, port) that differ only in the port.
    private let here = [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 10, 201, 94, 2] + [0xc3, 0x50]
    private let elsewhere = [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 10, 201, 94, 2] + [0xc3, 0x51]
    private let now: UInt64 = 1_000 * SessionLimits.nanosecondsPerSecond

    private func initiation() throws -> [UInt8] {
        try Handshaker(localKeys: sender)
            .makeInitiation(peerPublicKey: replier.publicKey, senderIndex: 0x0102_0304, timestamp: .now()).message
    }

    private func reply(_ responder: CookieResponder, to message: [UInt8], from identity: [UInt8], at time: UInt64) -> [UInt8] {
        var reply = [UInt8](repeating: 0, count: WireFormat.cookieReplySize)
        let written = message.withUnsafeBytes { message in
            identity.withUnsafeBytes { identity in
                reply.withUnsafeMutableBytes {
                    responder.writeReply(answering: message, source: identity, now: time, into: $0)
                }
            }
        }
        XCTAssertTrue(written)
        return reply
    }

    private func cookie(in reply: [UInt8], for message: [UInt8]) -> [UInt8]? {
        reply.withUnsafeBytes {
            CookieReply.openCookie($0, replierPublicKey: replier.publicKey, mac1: CookieReply.mac1(of: message))
        }
    }

    private func mac2IsValid(_ responder: CookieResponder, _ message: [UInt8], from identity: [UInt8], at time: UInt64) -> Bool {
        message.withUnsafeBytes { message in
            identity.withUnsafeBytes { responder.hasValidMAC2(message, source: $0, now: time) }
        }
    }

    func testStackHMACMatchesSwiftCryptoForEveryKeyLength() {
        for keyLength in [0, 16, 32, 64, 65, 100] {
            let key = (0..<keyLength).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 5) }
            let data = (0..<(keyLength * 3 + 1)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            var mac = [UInt8](repeating: 0, count: 32)
            data.withUnsafeBytes { data in
                key.withUnsafeBytes { key in
                    mac.withUnsafeMutableBytes { StackHMAC.authenticate(data, key: key, into: $0.baseAddress!) }
                }
            }
            let expected = Array(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key)))
            XCTAssertEqual(hexString(mac), hexString(expected), "key of \(keyLength) bytes")
        }
    }

    func testReplyCarriesTheSendersIndexAndACookieOnlyTheAddresseeCanOpen() throws {
        let responder = try CookieResponder(localPublicKey: replier.publicKey, masterSecret: masterSecret)
        let message = try initiation()
        let reply = reply(responder, to: message, from: here, at: now)

        XCTAssertEqual(reply[0], MessageType.cookieReply.rawValue)
        XCTAssertEqual(reply.withUnsafeBytes { CookieReply.receiverIndex($0) }, 0x0102_0304)
        XCTAssertNotNil(cookie(in: reply, for: message))
        // Bound to the message answered (its mac1) and to the replier's key.
        var other = try initiation()
        other[WireFormat.initiationMAC1Offset] ^= 1
        XCTAssertNil(cookie(in: reply, for: other))
        XCTAssertNil(reply.withUnsafeBytes {
            CookieReply.openCookie($0, replierPublicKey: sender.publicKey, mac1: CookieReply.mac1(of: message))
        })
        var tampered = reply
        tampered[WireFormat.cookieReplyCookieOffset] ^= 1
        XCTAssertNil(cookie(in: tampered, for: message))
    }

    func testRepliesNeverRepeatANonce() throws {
        let responder = try CookieResponder(localPublicKey: replier.publicKey, masterSecret: masterSecret)
        let message = try initiation()
        let nonces = (0..<3).map { _ in
            Array(reply(responder, to: message, from: here, at: now)[WireFormat.cookieReplyNonceOffset..<WireFormat.cookieReplyCookieOffset])
        }
        XCTAssertEqual(Set(nonces.map(hexString)).count, 3)
    }

    func testMAC2MadeWithTheCookieValidatesOnlyForItsSourceAndPeriod() throws {
        let responder = try CookieResponder(localPublicKey: replier.publicKey, masterSecret: masterSecret)
        var message = try initiation()
        XCTAssertFalse(mac2IsValid(responder, message, from: here, at: now), "zero mac2 accepted")
        let cookie = try XCTUnwrap(cookie(in: reply(responder, to: message, from: here, at: now), for: message))
        CookieReply.writeMAC2(in: &message, cookie: cookie)

        XCTAssertTrue(mac2IsValid(responder, message, from: here, at: now))
        XCTAssertTrue(mac2IsValid(responder, message, from: here, at: now + 1), "cookie of the same period refused")
        XCTAssertFalse(mac2IsValid(responder, message, from: elsewhere, at: now), "cookie valid from another port")
        let nextPeriod = (now / CookieResponder.secretLifetime + 1) * CookieResponder.secretLifetime
        XCTAssertFalse(mac2IsValid(responder, message, from: here, at: nextPeriod), "cookie outlived its secret")
        // Another node (another master secret) issues other cookies.
        let stranger = try CookieResponder(localPublicKey: replier.publicKey,
                                           masterSecret: [UInt8](repeating: 8, count: CookieResponder.masterSecretSize))
        XCTAssertFalse(mac2IsValid(stranger, message, from: here, at: now))
        // mac2 covers the message: a changed byte before it invalidates it.
        message[WireFormat.initiationNoiseOffset] ^= 1
        XCTAssertFalse(mac2IsValid(responder, message, from: here, at: now))
    }

    func testMasterSecretOfTheWrongSizeIsRefused() {
        XCTAssertThrowsError(try CookieResponder(localPublicKey: replier.publicKey, masterSecret: [1, 2, 3]))
    }
}
