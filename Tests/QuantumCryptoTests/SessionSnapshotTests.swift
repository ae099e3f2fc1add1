import XCTest
@testable import QuantumCrypto

/// A session handed to another process (rolling restart) must go on exactly where it
/// stopped: the same keys, the send counter continuing (never a GCM nonce twice), the
/// replay window and the age kept.
final class SessionSnapshotTests: XCTestCase {
    func testRestoredSessionContinuesCountersWithoutNonceReuse() throws {
        let pair = try SessionPair.make()
        let alice = try Session(keys: pair.aliceKeys, workers: 2, now: 1_000)
        let bob = try Session(keys: pair.bobKeys, workers: 2, now: 1_000)
        var counters: [UInt64] = []
        for _ in 0..<5 {
            let message = try XCTUnwrap(sealed(Array("before".utf8), by: alice))
            counters.append(message.withUnsafeBytes { TransportHeader.counter($0)! })
            XCTAssertEqual(open(message, by: bob).1, Array("before".utf8))
        }

        var snapshot = try XCTUnwrap(alice.snapshot(now: 5_000))
        XCTAssertEqual(snapshot.nextSendCounter, 5)
        XCTAssertEqual(snapshot.age, 4_000)
        XCTAssertEqual(snapshot.keyMaterial.count, Session.Snapshot.keyMaterialSize)
        let restored = try Session(restoring: snapshot, workers: 3, now: 9_000)
        Session.wipe(&snapshot.keyMaterial)
        XCTAssertEqual(snapshot.keyMaterial, [UInt8](repeating: 0, count: Session.Snapshot.keyMaterialSize))
        XCTAssertEqual(restored.createdAt, 5_000, "the age carries over")
        XCTAssertEqual(restored.localIndex, alice.localIndex)
        XCTAssertEqual(restored.remoteIndex, alice.remoteIndex)
        XCTAssertEqual(restored.isInitiator, alice.isInitiator)

        for worker in 0..<3 {
            let message = try XCTUnwrap(sealed(Array("after".utf8), by: restored, worker: worker))
            counters.append(message.withUnsafeBytes { TransportHeader.counter($0)! })
            XCTAssertEqual(open(message, by: bob).1, Array("after".utf8), "the peer still opens it: same keys")
        }
        XCTAssertEqual(counters, Array(0..<8), "counters continue; no nonce is used twice")

        // The other direction works with the restored receiving key.
        let reply = try XCTUnwrap(sealed(Array("reply".utf8), by: bob))
        XCTAssertEqual(open(reply, by: restored).1, Array("reply".utf8))
    }

    func testRestoredSessionKeepsItsReplayWindow() throws {
        let pair = try SessionPair.make()
        let alice = try Session(keys: pair.aliceKeys, workers: 1, now: 0)
        let bob = try Session(keys: pair.bobKeys, workers: 1, now: 0)
        let old = try (0..<3).map { _ in try XCTUnwrap(sealed([1, 2, 3], by: alice)) }
        XCTAssertEqual(open(old[0], by: bob).0, .payload(offset: 16, length: 3))
        XCTAssertEqual(open(old[2], by: bob).0, .payload(offset: 16, length: 3))

        let encoded = try JSONEncoder().encode(try XCTUnwrap(bob.snapshot(now: 0)))
        var decoded = try JSONDecoder().decode(Session.Snapshot.self, from: encoded)
        XCTAssertTrue(decoded.keyMaterial.isEmpty, "key bytes never pass through the encoder")
        decoded.keyMaterial = try XCTUnwrap(bob.snapshot(now: 0)).keyMaterial
        let restored = try Session(restoring: decoded, workers: 1, now: 0)

        XCTAssertEqual(open(old[0], by: restored).0, .replayed, "accepted before the handover")
        XCTAssertEqual(open(old[2], by: restored).0, .replayed, "accepted before the handover")
        XCTAssertEqual(open(old[1], by: restored).0, .payload(offset: 16, length: 3), "never seen: still accepted")
    }

    func testSnapshotNeedsBothKeysAndAWholeWindow() throws {
        let pair = try SessionPair.make()
        let session = try Session(keys: pair.aliceKeys, workers: 1, now: 0)
        var snapshot = try XCTUnwrap(session.snapshot(now: 0))
        snapshot.keyMaterial.removeLast()
        XCTAssertThrowsError(try Session(restoring: snapshot, workers: 1, now: 0))

        session.wipe()
        XCTAssertNil(session.snapshot(now: 0), "a wiped session has nothing to hand over")

        let window = #"{"bitmap":[0,0],"highest":5,"isEmpty":false}"#
        XCTAssertThrowsError(try JSONDecoder().decode(ReplayWindow.self, from: Data(window.utf8)))
    }
}
