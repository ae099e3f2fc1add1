import QuantumCommand
import XCTest

/// `--keepalive` (persistent keepalive) from every source, off with 0, and bad values refused.
final class KeepaliveOptionTests: XCTestCase {
    func testDefaultIsTwentyFiveSeconds() throws {
        XCTAssertEqual(try resolve().keepalive, 25)
    }

    func testEverySourceSetsIt() throws {
        XCTAssertEqual(try resolve(cli: ["keepalive": "15s"]).keepalive, 15)
        XCTAssertEqual(try resolve(env: ["QUANTUM_KEEPALIVE": "1m"]).keepalive, 60)
        XCTAssertEqual(try resolve(cli: ["conf-file": "/q.yml"], files: ["/q.yml": "keepalive: 40s"]).keepalive, 40)
        XCTAssertEqual(try resolve(cli: ["keepalive": "5s"], env: ["QUANTUM_KEEPALIVE": "1m"]).keepalive, 5,
                       "the command line wins over the environment")
    }

    func testZeroTurnsItOff() throws {
        XCTAssertEqual(try resolve(cli: ["keepalive": "0"]).keepalive, 0)
        XCTAssertEqual(try resolve(env: ["QUANTUM_KEEPALIVE": "0s"]).keepalive, 0)
        XCTAssertTrue(try resolve(cli: ["keepalive": "0"]).description.contains("keepalive=0"))
    }

    func testBadValuesAreRefusedNamingTheOption() {
        for bad in ["-5s", "abc", "25", "1500ms", "", "0m5"] {
            assertRejected(cli: ["keepalive": bad], mentions: ["--keepalive", "whole seconds"])
        }
        assertRejected(env: ["QUANTUM_KEEPALIVE": "soon"], mentions: ["--keepalive", "soon"])
    }
}
