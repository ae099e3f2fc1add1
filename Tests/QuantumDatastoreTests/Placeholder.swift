import XCTest
final class QuantumDatastoreTestsPlaceholder: XCTestCase { func testNothing() {} }
