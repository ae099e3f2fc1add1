import XCTest
final class QuantumCommandTestsPlaceholder: XCTestCase { func testNothing() {} }
