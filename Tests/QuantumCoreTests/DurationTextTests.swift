import XCTest
@testable import QuantumCore

final class DurationTextTests: XCTestCase {
    func testParses() {
        XCTAssertEqual(DurationText.milliseconds("10s"), 10_000)
        XCTAssertEqual(DurationText.milliseconds("5m"), 300_000)
        XCTAssertEqual(DurationText.milliseconds("48h"), 172_800_000)
        XCTAssertEqual(DurationText.milliseconds("1h30m"), 5_400_000)
        XCTAssertEqual(DurationText.milliseconds("250ms"), 250)
        XCTAssertEqual(DurationText.milliseconds("2d"), 172_800_000)
        XCTAssertEqual(DurationText.milliseconds("1m30s500ms"), 90_500)
        XCTAssertEqual(DurationText.milliseconds("0h10s"), 10_000, "a zero group is fine when the total is positive")
        XCTAssertEqual(DurationText.milliseconds("007s"), 7_000)
    }

    func testRejects() {
        for text in ["", "10", "s", "-5s", "5x", "0s", "0ms", "0h0m", " 5s", "5s ", "5 s", "1h 30m", "5S",
                     "5sec", "1.5s", "1e3s", "ms", "5s-", "+5s"] {
            XCTAssertNil(DurationText.milliseconds(text), "'\(text)' should be refused")
        }
    }

    func testRejectsValuesTooLargeInsteadOfOverflowing() {
        XCTAssertNil(DurationText.milliseconds("9999999999999s"), "more than 12 digits")
        XCTAssertNil(DurationText.milliseconds("999999999999d"), "overflows Int64 milliseconds")
        XCTAssertNil(DurationText.milliseconds("999999999999h999999999999h999999999999h"), "sum overflows")
        XCTAssertEqual(DurationText.milliseconds("999999999999h"), 3_599_999_999_996_400_000)
    }

    func testFormat() {
        XCTAssertEqual(DurationText.format(seconds: 172_800), "48h")
        XCTAssertEqual(DurationText.format(seconds: 604_800), "7d")
        XCTAssertEqual(DurationText.format(seconds: 86_400), "24h")
        XCTAssertEqual(DurationText.format(seconds: 3600), "1h")
        XCTAssertEqual(DurationText.format(seconds: 5400), "90m")
        XCTAssertEqual(DurationText.format(seconds: 120), "2m")
        XCTAssertEqual(DurationText.format(seconds: 90), "90s")
        XCTAssertEqual(DurationText.format(seconds: 1), "1s")
    }

    func testFormatRoundTrips() {
        for seconds: Int64 in [1, 10, 59, 60, 90, 3600, 5400, 86_400, 172_800, 604_800, 1_209_600, 1_000_003] {
            XCTAssertEqual(DurationText.milliseconds(DurationText.format(seconds: seconds)), seconds * 1000, "\(seconds)")
        }
    }
}
