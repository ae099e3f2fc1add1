import Foundation
import Synchronization
import XCTest
@testable import QuantumCrypto

final class SessionTests: XCTestCase {
    private var pair: SessionPair!

    override func setUpWithError() throws {
        pair = try SessionPair.make()
    }

    func testSealLayoutAndRoundTrip() throws {
        let alice = try Session(keys: pair.aliceKeys, workers: 2, now: 0)
        let bob = try Session(keys: pair.bobKeys, workers: 2, now: 0)
        let payload = Array("an IPv4 packet, more or less".utf8)

        let first = try XCTUnwrap(sealed(payload, by: alice, worker: 1, flags: 0x01))
        XCTAssertEqual(Array(first[0..<4]), [4, 0x01, 0, 0], "type, flags, reserved")
        XCTAssertEqual(Array(first[4..<8]), [0xAE, 0x08, 0, 0], "bob's index 2222, little-endian")
        XCTAssertEqual(Array(first[8..<16]), [0, 0, 0, 0, 0, 0, 0, 0], "counter 0")
        XCTAssertNotEqual(Array(first[16..<(16 + payload.count)]), payload, "payload is encrypted")
        first.withUnsafeBytes {
            XCTAssertEqual(TransportHeader.receiverIndex($0), 2222)
            XCTAssertEqual(TransportHeader.counter($0), 0)
            XCTAssertEqual(TransportHeader.flags($0), 1)
            XCTAssertEqual(MessageType(of: $0), .transport)
        }
        let (result, plaintext) = open(first, by: bob, worker: 0)
        XCTAssertEqual(result, .payload(offset: 16, length: payload.count))
        XCTAssertEqual(plaintext, payload)

        let second = try XCTUnwrap(sealed(payload, by: alice))
        second.withUnsafeBytes { XCTAssertEqual(TransportHeader.counter($0), 1) }
        XCTAssertEqual(open(second, by: bob, worker: 1).1, payload)
        XCTAssertEqual(alice.sentMessages, 2)

        // The other direction, and an empty payload (a keepalive).
        let reply = try XCTUnwrap(sealed([], by: bob))
        XCTAssertEqual(reply.count, WireFormat.transportOverhead)
        XCTAssertEqual(open(reply, by: alice).0, .payload(offset: 16, length: 0))
    }

    func testReplayIsRejected() throws {
        let alice = try Session(keys: pair.aliceKeys, workers: 1, now: 0)
        let bob = try Session(keys: pair.bobKeys, workers: 1, now: 0)
        let messages = (0..<3).compactMap { sealed([UInt8]("m\($0)".utf8), by: alice) }
        XCTAssertEqual(open(messages[2], by: bob).1, Array("m2".utf8))
        XCTAssertEqual(open(messages[2], by: bob).0, .replayed)
        XCTAssertEqual(open(messages[0], by: bob).1, Array("m0".utf8), "out of order within the window")
        XCTAssertEqual(open(messages[0], by: bob).0, .replayed)
        XCTAssertEqual(open(messages[1], by: bob).1, Array("m1".utf8))
    }

    func testTamperedBytesAreRejectedAndDoNotMoveTheWindow() throws {
        let alice = try Session(keys: pair.aliceKeys, workers: 1, now: 0)
        let bob = try Session(keys: pair.bobKeys, workers: 1, now: 0)
        let message = try XCTUnwrap(sealed(Array("do not touch".utf8), by: alice))

        for offset in [1, 8, 16, 20, message.count - 1] {  // flags, counter, body, body, tag
            var tampered = message
            tampered[offset] ^= 0x01
            XCTAssertEqual(open(tampered, by: bob).0, .authenticationFailed, "byte \(offset)")
        }
        // A forged message with a far-ahead counter must not push the genuine one out of the window.
        var forged = message
        forged.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(1 << 40).littleEndian, toByteOffset: 8, as: UInt64.self) }
        XCTAssertEqual(open(forged, by: bob).0, .authenticationFailed)
        XCTAssertEqual(open(message, by: bob).1, Array("do not touch".utf8))
    }

    func testMalformedMessages() throws {
        let alice = try Session(keys: pair.aliceKeys, workers: 1, now: 0)
        let bob = try Session(keys: pair.bobKeys, workers: 1, now: 0)
        let message = try XCTUnwrap(sealed([1, 2, 3], by: alice))
        XCTAssertEqual(open(Array(message.prefix(WireFormat.transportOverhead - 1)), by: bob).0, .malformed, "too short")
        var wrongType = message
        wrongType[0] = 1
        XCTAssertEqual(open(wrongType, by: bob).0, .malformed)
        var reserved = message
        reserved[3] = 1
        XCTAssertEqual(open(reserved, by: bob).0, .malformed)
        var otherIndex = message
        otherIndex[4] ^= 1
        XCTAssertEqual(open(otherIndex, by: bob).0, .malformed)
        XCTAssertEqual(open(message, by: alice).0, .malformed, "addressed to bob, not alice")
        XCTAssertEqual(open(message, by: bob).1, [1, 2, 3])
    }

    func testCounterExhaustion() throws {
        let limit = SessionLimits.rejectAfterMessages
        XCTAssertEqual(limit, UInt64.max - 8192, "2^64 - 2^13 - 1")
        let alice = try Session(keys: pair.aliceKeys, workers: 1, now: 0, firstSendCounter: limit - 1)
        let bob = try Session(keys: pair.bobKeys, workers: 1, now: 0)
        let last = try XCTUnwrap(sealed([7], by: alice), "the last counter below the limit is usable")
        last.withUnsafeBytes { XCTAssertEqual(TransportHeader.counter($0), limit - 1) }
        XCTAssertEqual(open(last, by: bob).1, [7])
        for _ in 0..<3 {
            XCTAssertNil(sealed([8], by: alice), "no counter at or past the limit")
        }
        XCTAssertEqual(alice.sentMessages, limit)
        XCTAssertTrue(alice.shouldRekey(now: 0))

        var beyond = last
        beyond.withUnsafeMutableBytes { $0.storeBytes(of: limit.littleEndian, toByteOffset: 8, as: UInt64.self) }
        XCTAssertEqual(open(beyond, by: bob).0, .exhausted)
    }

    func testRekeyAndExpiryTimes() throws {
        let start: UInt64 = 1_000 * SessionLimits.nanosecondsPerSecond
        let alice = try Session(keys: pair.aliceKeys, workers: 1, now: start)
        let bob = try Session(keys: pair.bobKeys, workers: 1, now: start)
        XCTAssertTrue(alice.isInitiator)
        XCTAssertFalse(bob.isInitiator)
        XCTAssertFalse(alice.shouldRekey(now: start + SessionLimits.rekeyAfterTime - 1))
        XCTAssertTrue(alice.shouldRekey(now: start + SessionLimits.rekeyAfterTime))
        XCTAssertFalse(bob.shouldRekey(now: start + SessionLimits.rekeyAfterTime), "only the initiator rekeys on time")
        XCTAssertFalse(alice.isExpired(now: start + SessionLimits.rejectAfterTime - 1))
        XCTAssertTrue(alice.isExpired(now: start + SessionLimits.rejectAfterTime))
        XCTAssertTrue(bob.isExpired(now: start + SessionLimits.rejectAfterTime))
        XCTAssertFalse(alice.isExpired(now: 0), "a clock reading before creation is age zero")

        let busy = try Session(keys: pair.bobKeys, workers: 1, now: start, firstSendCounter: SessionLimits.rekeyAfterMessages)
        XCTAssertTrue(busy.shouldRekey(now: start), "message count triggers rekey on either side")
    }

    func testLimitConstants() {
        XCTAssertEqual(SessionLimits.rekeyAfterMessages, 1 << 60)
        XCTAssertEqual(SessionLimits.rekeyAfterTime, 120_000_000_000)
        XCTAssertEqual(SessionLimits.rejectAfterTime, 180_000_000_000)
        XCTAssertEqual(SessionLimits.rekeyTimeout, 5_000_000_000)
        XCTAssertEqual(SessionLimits.keepaliveTimeout, 10_000_000_000)
        XCTAssertEqual(WireFormat.transportOverhead, 32)
    }

    func testWipe() throws {
        let alice = try Session(keys: pair.aliceKeys, workers: 2, now: 0)
        let bob = try Session(keys: pair.bobKeys, workers: 2, now: 0)
        let message = try XCTUnwrap(sealed([1], by: alice))
        bob.wipe()
        XCTAssertEqual(open(message, by: bob).0, .exhausted)
        alice.wipe()
        XCTAssertNil(sealed([1], by: alice))
        XCTAssertNil(sealed([1], by: alice, worker: 1))
    }

    func testConcurrentWorkersUseDistinctCounters() throws {
        let workers = 4
        let perWorker = 500
        let alice = try Session(keys: pair.aliceKeys, workers: workers, now: 0)
        let bob = try Session(keys: pair.bobKeys, workers: workers, now: 0)
        let messages = Mutex<[[UInt8]]>([])
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var mine: [[UInt8]] = []
            for i in 0..<perWorker {
                if let message = sealed([UInt8(worker), UInt8(i & 0xFF)], by: alice, worker: worker) { mine.append(message) }
            }
            messages.withLock { $0 += mine }
        }
        let all = messages.withLock { $0 }
        XCTAssertEqual(all.count, workers * perWorker)
        let counters = Set(all.map { $0.withUnsafeBytes { TransportHeader.counter($0)! } })
        XCTAssertEqual(counters, Set((0..<UInt64(workers * perWorker))))
        // Opened concurrently too; counters are interleaved but all within the window.
        let accepted = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var count = 0
            for message in all[(worker * perWorker)..<((worker + 1) * perWorker)] {
                if case .payload = open(message, by: bob, worker: worker).0 { count += 1 }
            }
            accepted.withLock { $0 += count }
        }
        XCTAssertGreaterThan(accepted.withLock { $0 }, 0)
        for message in all { XCTAssertEqual(open(message, by: bob).0, .replayed) }
    }
}

/// A sealed transport message carrying `payload`, from `sender` on `worker`.
func sealed(_ payload: [UInt8], by sender: Session, worker: Int = 0, flags: UInt8 = 0) -> [UInt8]? {
    var buffer = [UInt8](repeating: 0xEE, count: payload.count + WireFormat.transportOverhead)
    buffer.replaceSubrange(16..<(16 + payload.count), with: payload)
    guard let length = buffer.withUnsafeMutableBytes({ sender.seal($0.baseAddress!, payloadLength: payload.count, worker: worker, flags: flags) }) else {
        return nil
    }
    XCTAssertEqual(length, buffer.count)
    return buffer
}

/// Opens a copy of `message` with `receiver`; returns the result and the plaintext if any.
func open(_ message: [UInt8], by receiver: Session, worker: Int = 0) -> (OpenResult, [UInt8]?) {
    var copy = message
    let result = copy.withUnsafeMutableBytes { receiver.open($0, worker: worker) }
    guard case let .payload(offset, length) = result else { return (result, nil) }
    return (result, Array(copy[offset..<(offset + length)]))
}
