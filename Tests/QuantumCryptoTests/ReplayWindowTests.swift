import XCTest
@testable import QuantumCrypto

final class ReplayWindowTests: XCTestCase {
    private let size = UInt64(ReplayWindow.windowSize)

    func testWindowSizeConstants() {
        XCTAssertEqual(ReplayWindow.bitmapBits, 2048)
        XCTAssertEqual(ReplayWindow.windowSize, 2048 - 64)
    }

    func testFirstPacketAndCounterZero() {
        var window = ReplayWindow()
        XCTAssertTrue(window.check(0))
        XCTAssertTrue(window.accept(0))
        XCTAssertFalse(window.check(0))
        XCTAssertFalse(window.accept(0))
        XCTAssertTrue(window.accept(1))
    }

    func testFirstPacketMayBeAnyCounter() {
        var window = ReplayWindow()
        XCTAssertTrue(window.accept(5000))
        XCTAssertTrue(window.accept(4999), "just behind the first one")
        XCTAssertFalse(window.accept(5000 - size), "older than the window behind the first one")
    }

    func testInOrder() {
        var window = ReplayWindow()
        for counter in UInt64(0)..<10_000 {
            XCTAssertTrue(window.accept(counter), "counter \(counter)")
        }
        XCTAssertFalse(window.accept(9_999))
    }

    func testOutOfOrderWithinWindowAndDuplicates() {
        var window = ReplayWindow()
        XCTAssertTrue(window.accept(100))
        XCTAssertTrue(window.accept(90))
        XCTAssertTrue(window.accept(95))
        XCTAssertFalse(window.accept(90), "duplicate")
        XCTAssertFalse(window.accept(100), "duplicate of the highest")
        XCTAssertTrue(window.accept(101))
        XCTAssertTrue(window.accept(99))
        XCTAssertFalse(window.accept(95))
    }

    func testCheckDoesNotRecord() {
        var window = ReplayWindow()
        XCTAssertTrue(window.accept(10))
        XCTAssertTrue(window.check(11))
        XCTAssertTrue(window.check(11))
        XCTAssertTrue(window.check(7))
        XCTAssertTrue(window.accept(7))
        XCTAssertTrue(window.accept(11))
    }

    func testExactlyAtWindowEdge() {
        var window = ReplayWindow()
        let highest: UInt64 = 10_000
        XCTAssertTrue(window.accept(highest))
        XCTAssertFalse(window.check(highest - size), "exactly windowSize behind is too old")
        XCTAssertTrue(window.accept(highest - size + 1), "the oldest counter still inside the window")
        XCTAssertFalse(window.accept(highest - size + 1), "and only once")
        XCTAssertFalse(window.accept(0), "far too old")
    }

    func testEdgeAtEveryAlignment() {
        // The ring is cleared word by word, so check the edge at each bit position.
        for offset in UInt64(0)..<64 {
            var window = ReplayWindow()
            let highest = 64 * 100 + offset
            XCTAssertTrue(window.accept(highest))
            for counter in (highest - size + 1)..<highest {
                XCTAssertTrue(window.accept(counter), "offset \(offset), counter \(counter)")
            }
            XCTAssertFalse(window.check(highest - size), "offset \(offset)")
            for counter in (highest - size + 1)...highest {
                XCTAssertFalse(window.check(counter), "offset \(offset), replayed \(counter)")
            }
        }
    }

    func testAdvancingForgetsOnlyWhatFallsOutOfTheWindow() {
        var window = ReplayWindow()
        XCTAssertTrue(window.accept(1000))
        XCTAssertTrue(window.accept(1000 + size - 1))
        XCTAssertFalse(window.accept(1000), "still inside the window, so still remembered")
        XCTAssertTrue(window.accept(1000 + size + 64))
        XCTAssertFalse(window.check(1000), "now too old")
    }

    func testHugeJumpClearsTheWindow() {
        var window = ReplayWindow()
        for counter in UInt64(0)..<100 { XCTAssertTrue(window.accept(counter)) }
        let far: UInt64 = 1 << 40
        XCTAssertTrue(window.accept(far))
        XCTAssertFalse(window.check(50), "too old after the jump")
        // Counters just behind the new highest were never seen, even if their bits were set before.
        for counter in (far - 100)..<far {
            XCTAssertTrue(window.accept(counter), "counter \(counter)")
        }
        // A jump of exactly one full ring must not alias old bits either.
        var ring = ReplayWindow()
        XCTAssertTrue(ring.accept(3))
        XCTAssertTrue(ring.accept(3 + UInt64(ReplayWindow.bitmapBits)))
        XCTAssertTrue(ring.accept(3 + UInt64(ReplayWindow.bitmapBits) - 64), "bit of counter 3 must be cleared")
    }

    func testUInt64Limits() {
        var window = ReplayWindow()
        XCTAssertTrue(window.accept(UInt64.max - 1))
        XCTAssertTrue(window.accept(UInt64.max))
        XCTAssertFalse(window.accept(UInt64.max))
        XCTAssertFalse(window.accept(UInt64.max - 1))
        XCTAssertTrue(window.accept(UInt64.max - size + 1))
        XCTAssertFalse(window.accept(UInt64.max - size))
        XCTAssertFalse(window.accept(0))

        var fromZero = ReplayWindow()
        XCTAssertTrue(fromZero.accept(0))
        XCTAssertTrue(fromZero.accept(UInt64.max), "jump across the whole range")
        XCTAssertFalse(fromZero.check(0))
    }
}
