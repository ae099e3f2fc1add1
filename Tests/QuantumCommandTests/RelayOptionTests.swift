import QuantumCommand
import XCTest

/// `--relay` from every source; off by default.
final class RelayOptionTests: XCTestCase {
    func testOffByDefault() throws {
        XCTAssertFalse(try resolve().relay)
        XCTAssertTrue(try resolve().description.contains("relay=false"))
    }

    func testEverySourceSetsIt() throws {
        XCTAssertTrue(try resolve(cli: ["relay": "true"]).relay)
        XCTAssertTrue(try resolve(env: ["QUANTUM_RELAY": "true"]).relay)
        XCTAssertTrue(try resolve(cli: ["conf-file": "/q.yml"], files: ["/q.yml": "relay: true"]).relay)
    }

    func testBadValuesAreRefusedNamingTheOption() {
        assertRejected(env: ["QUANTUM_RELAY": "maybe"], mentions: ["--relay", "maybe"])
    }
}
