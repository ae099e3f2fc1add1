import XCTest
final class QuantumCoreTestsPlaceholder: XCTestCase { func testNothing() {} }
