import Glibc
import QuantumDevice
import XCTest

final class HandoverChannelTests: XCTestCase {
    func testMessageCarriesPayloadAndOpenDescriptors() throws {
        let (a, b) = try HandoverChannel.pair()
        defer {
            a.close()
            b.close()
        }
        var pipeEnds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&pipeEnds), 0)
        defer { close(pipeEnds[0]) }
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0) }
        // The payload exceeds the socket buffer: send from another thread while receiving.
        let writeEnd = pipeEnds[1]
        let sender = Thread { try? a.send(kind: 4, payload: payload, fds: [writeEnd]) }
        sender.start()
        let message = try b.receive(timeoutMilliseconds: 5_000, maximumLength: 1 << 20)
        close(pipeEnds[1])
        XCTAssertEqual(message.kind, 4)
        XCTAssertEqual(message.payload, payload)
        XCTAssertEqual(message.fds.count, 1)
        let passed = message.fds[0]
        XCTAssertNotEqual(passed, pipeEnds[1], "a new descriptor for the same open pipe")
        XCTAssertEqual(fcntl(passed, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC, "received descriptors are close-on-exec")
        XCTAssertEqual(write(passed, "hi", 2), 2)
        close(passed)
        var buffer = [UInt8](repeating: 0, count: 2)
        XCTAssertEqual(read(pipeEnds[0], &buffer, 2), 2)
        XCTAssertEqual(buffer, Array("hi".utf8))
    }

    func testTimeoutClosedPeerAndOversizeAreErrors() throws {
        let (a, b) = try HandoverChannel.pair()
        defer { b.close() }
        XCTAssertThrowsError(try b.receive(timeoutMilliseconds: 50, maximumLength: 10)) {
            XCTAssertEqual(($0 as? SystemError)?.code, ETIMEDOUT)
        }
        try a.send(kind: 1, payload: [UInt8](repeating: 1, count: 11))
        XCTAssertThrowsError(try b.receive(timeoutMilliseconds: 1_000, maximumLength: 10)) {
            XCTAssertEqual(($0 as? SystemError)?.code, EMSGSIZE)
        }
        a.close()
        let (c, d) = try HandoverChannel.pair()
        defer { d.close() }
        c.close()
        XCTAssertThrowsError(try d.receive(timeoutMilliseconds: 1_000, maximumLength: 100)) {
            XCTAssertEqual(($0 as? SystemError)?.code, ECONNRESET)
        }
        // The next socket gets c's old descriptor number: c must not write into it.
        let (e, f) = try HandoverChannel.pair()
        defer {
            e.close()
            f.close()
        }
        XCTAssertEqual(e.fileDescriptor, c.fileDescriptor, "the descriptor number was reused")
        XCTAssertThrowsError(try c.send(kind: 9, payload: [])) { XCTAssertEqual(($0 as? SystemError)?.code, EBADF) }
        XCTAssertThrowsError(try f.receive(timeoutMilliseconds: 50, maximumLength: 100)) {
            XCTAssertEqual(($0 as? SystemError)?.code, ETIMEDOUT, "nothing arrived through the reused number")
        }
    }
}
