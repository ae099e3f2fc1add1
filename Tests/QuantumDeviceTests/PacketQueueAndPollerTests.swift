import Foundation
import Glibc
import XCTest
@testable import QuantumDevice

final class PacketQueueTests: XCTestCase {
    func testRoundTripKeepsPacketBoundaries() throws {
        let (a, b) = try PacketQueue.pair()
        defer { a.close(); b.close() }
        XCTAssertNotEqual(a.fileDescriptor, b.fileDescriptor)
        let first: [UInt8] = [0x45, 1, 2, 3, 4]
        let second = [UInt8](repeating: 0xEE, count: 1400)
        XCTAssertEqual(first.withUnsafeBytes { a.write($0.baseAddress!, length: $0.count) }, 0)
        XCTAssertEqual(second.withUnsafeBytes { a.write($0.baseAddress!, length: $0.count) }, 0)

        var buffer = [UInt8](repeating: 0, count: 2000)
        let n1 = buffer.withUnsafeMutableBytes { b.read(into: $0.baseAddress!, capacity: $0.count) }
        XCTAssertEqual(n1, 5)
        XCTAssertEqual(Array(buffer.prefix(n1)), first)
        let n2 = buffer.withUnsafeMutableBytes { b.read(into: $0.baseAddress!, capacity: $0.count) }
        XCTAssertEqual(n2, 1400)
        XCTAssertEqual(Array(buffer.prefix(n2)), second)
        XCTAssertEqual(buffer.withUnsafeMutableBytes { b.read(into: $0.baseAddress!, capacity: $0.count) }, 0,
                       "empty queue reads 0")

        // The other direction works too.
        XCTAssertEqual(([9, 9] as [UInt8]).withUnsafeBytes { b.write($0.baseAddress!, length: 2) }, 0)
        XCTAssertEqual(buffer.withUnsafeMutableBytes { a.read(into: $0.baseAddress!, capacity: $0.count) }, 2)
        XCTAssertEqual(Array(buffer.prefix(2)), [9, 9])
    }

    func testReadOnEmptyQueueReturnsZero() throws {
        let (a, b) = try PacketQueue.pair()
        defer { a.close(); b.close() }
        var buffer = [UInt8](repeating: 0, count: 64)
        XCTAssertEqual(buffer.withUnsafeMutableBytes { a.read(into: $0.baseAddress!, capacity: $0.count) }, 0)
        XCTAssertEqual(buffer.withUnsafeMutableBytes { b.read(into: $0.baseAddress!, capacity: $0.count) }, 0)
    }

    func testReadOnClosedDescriptorIsNegativeErrno() throws {
        let (a, b) = try PacketQueue.pair()
        b.close()
        a.close()
        var buffer = [UInt8](repeating: 0, count: 64)
        XCTAssertEqual(buffer.withUnsafeMutableBytes { a.read(into: $0.baseAddress!, capacity: $0.count) }, -Int(EBADF))
    }
}

final class PollerTests: XCTestCase {
    private func elapsed(_ body: () -> Bool) -> (Bool, Duration) {
        let start = ContinuousClock.now
        let result = body()
        return (result, ContinuousClock.now - start)
    }

    func testTimesOut() throws {
        let poller = try Poller()
        let (a, b) = try PacketQueue.pair()
        defer { a.close(); b.close() }
        let (ready, took) = elapsed { poller.wait((a.fileDescriptor, b.fileDescriptor), timeoutMilliseconds: 60) }
        XCTAssertFalse(ready)
        XCTAssertGreaterThanOrEqual(took, .milliseconds(50))
        XCTAssertLessThan(took, .seconds(2))
    }

    func testReadableDescriptor() throws {
        let poller = try Poller()
        let (a, b) = try PacketQueue.pair()
        let (c, d) = try PacketQueue.pair()
        defer { a.close(); b.close(); c.close(); d.close() }
        XCTAssertEqual(([1] as [UInt8]).withUnsafeBytes { a.write($0.baseAddress!, length: 1) }, 0)
        // Readable in the first slot…
        var (ready, took) = elapsed { poller.wait((b.fileDescriptor, d.fileDescriptor), timeoutMilliseconds: 5000) }
        XCTAssertTrue(ready)
        XCTAssertLessThan(took, .seconds(1))
        // …and in the second.
        (ready, took) = elapsed { poller.wait((d.fileDescriptor, b.fileDescriptor), timeoutMilliseconds: 5000) }
        XCTAssertTrue(ready)
        XCTAssertLessThan(took, .seconds(1))
        // Once drained, it is no longer readable.
        var byte: UInt8 = 0
        XCTAssertEqual(b.read(into: &byte, capacity: 1), 1)
        XCTAssertFalse(poller.wait((b.fileDescriptor, d.fileDescriptor), timeoutMilliseconds: 20))
    }

    func testWakeIsLevelTriggeredUntilCleared() throws {
        let poller = try Poller()
        let (a, b) = try PacketQueue.pair()
        defer { a.close(); b.close() }
        poller.wake()
        var (ready, took) = elapsed { poller.wait((a.fileDescriptor, b.fileDescriptor), timeoutMilliseconds: 5000) }
        XCTAssertFalse(ready)
        XCTAssertLessThan(took, .seconds(1))
        (ready, took) = elapsed { poller.wait((a.fileDescriptor, b.fileDescriptor), timeoutMilliseconds: 5000) }
        XCTAssertFalse(ready)
        XCTAssertLessThan(took, .seconds(1), "still woken")
        poller.clearWake()
        (ready, took) = elapsed { poller.wait((a.fileDescriptor, b.fileDescriptor), timeoutMilliseconds: 40) }
        XCTAssertFalse(ready)
        XCTAssertGreaterThanOrEqual(took, .milliseconds(30), "cleared: waits for the timeout")
    }

    func testWakeWinsOverReadable() throws {
        let poller = try Poller()
        let (a, b) = try PacketQueue.pair()
        defer { a.close(); b.close() }
        XCTAssertEqual(([1] as [UInt8]).withUnsafeBytes { a.write($0.baseAddress!, length: 1) }, 0)
        poller.wake()
        XCTAssertFalse(poller.wait((b.fileDescriptor, b.fileDescriptor), timeoutMilliseconds: 5000))
        poller.clearWake()
        XCTAssertTrue(poller.wait((b.fileDescriptor, b.fileDescriptor), timeoutMilliseconds: 5000))
    }

    func testWakeFromAnotherThread() throws {
        let poller = try Poller()
        let (a, b) = try PacketQueue.pair()
        defer { a.close(); b.close() }
        let thread = Thread { usleep(50_000); poller.wake() }
        thread.start()
        let (ready, took) = elapsed { poller.wait((a.fileDescriptor, b.fileDescriptor), timeoutMilliseconds: 10_000) }
        XCTAssertFalse(ready)
        XCTAssertGreaterThanOrEqual(took, .milliseconds(40))
        XCTAssertLessThan(took, .seconds(5))
    }
}
