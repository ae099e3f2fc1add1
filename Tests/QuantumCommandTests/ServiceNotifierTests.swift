import Foundation
import Glibc
import XCTest

@testable import QuantumCommand

/// The sd_notify datagrams, read from a unix datagram socket standing in for systemd.
final class ServiceNotifierTests: XCTestCase {
    /// A bound datagram socket at `path` (a leading "@" for the abstract namespace).
    private func listen(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        XCTAssertEqual(bound, 0, String(cString: strerror(errno)))
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    private func next(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : nil
    }

    func testLifecycleDatagramsReachAPathSocket() throws {
        let path = NSTemporaryDirectory() + "qt-notify-\(getpid()).sock"
        unlink(path)
        let fd = try listen(path)
        defer {
            close(fd)
            unlink(path)
        }
        let notifier = ServiceNotifier(environment: ["NOTIFY_SOCKET": path])
        XCTAssertNil(notifier.ready())
        XCTAssertEqual(next(fd), "READY=1")
        XCTAssertNil(notifier.reloading())
        let reloading = try XCTUnwrap(next(fd)).split(separator: "\n")
        XCTAssertEqual(reloading.first, "RELOADING=1")
        XCTAssertTrue(reloading.last?.hasPrefix("MONOTONIC_USEC=") == true && UInt64(reloading.last!.dropFirst(15)) != nil)
        XCTAssertNil(notifier.tookOver())
        XCTAssertEqual(next(fd), "MAINPID=\(getpid())\nREADY=1")
        XCTAssertNil(notifier.stopping())
        XCTAssertEqual(next(fd), "STOPPING=1")
    }

    func testAbstractSocketAndUnsetVariable() throws {
        let name = "@qt-notify-test-\(getpid())"
        let fd = try listen(name)
        defer { close(fd) }
        XCTAssertNil(ServiceNotifier(environment: ["NOTIFY_SOCKET": name]).ready())
        XCTAssertEqual(next(fd), "READY=1")

        let unset = ServiceNotifier(environment: [:])
        XCTAssertNil(unset.socketPath)
        XCTAssertNil(unset.ready(), "no manager, nothing to do")
        XCTAssertNil(ServiceNotifier(environment: ["NOTIFY_SOCKET": ""]).socketPath, "empty counts as unset")
    }

    func testAMissingSocketIsReportedNotFatal() {
        let problem = ServiceNotifier(environment: ["NOTIFY_SOCKET": "/nonexistent/notify.sock"]).ready()
        XCTAssertTrue(problem?.contains("/nonexistent/notify.sock") == true, problem ?? "nil")
    }
}
