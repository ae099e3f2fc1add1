import XCTest
final class QuantumNodeTestsPlaceholder: XCTestCase { func testNothing() {} }
