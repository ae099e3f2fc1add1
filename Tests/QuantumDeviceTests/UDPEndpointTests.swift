import Glibc
import XCTest
import QuantumCore
@testable import QuantumDevice

final class UDPEndpointTests: XCTestCase {
    private let loopback = IPv4Address("127.0.0.1")!

    func testIPv4FamilyEndpoint() {
        let endpoint = UDPEndpoint(loopback, port: 5000, family: .ipv4)
        XCTAssertEqual(endpoint.description, "127.0.0.1:5000")
        XCTAssertEqual(endpoint.port, 5000)
        XCTAssertEqual(endpoint.length, socklen_t(MemoryLayout<sockaddr_in>.size))
        XCTAssertEqual(Int32(endpoint.storage.sin6_family), AF_INET)
        XCTAssertEqual(UDPEndpoint(IPv4Address("203.0.113.250")!, port: 65535, family: .ipv4).description,
                       "203.0.113.250:65535")
    }

    func testIPv4MappedIntoIPv6Family() {
        let endpoint = UDPEndpoint(loopback, port: 5000, family: .ipv6)
        XCTAssertEqual(endpoint.description, "127.0.0.1:5000")
        XCTAssertEqual(endpoint.port, 5000)
        XCTAssertEqual(endpoint.length, socklen_t(MemoryLayout<sockaddr_in6>.size))
        XCTAssertEqual(Int32(endpoint.storage.sin6_family), AF_INET6)
        XCTAssertEqual(endpoint.addressBytes, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1])
        // The same endpoint written as an IPv6 address.
        XCTAssertEqual(endpoint, UDPEndpoint(IPv6Address("::ffff:127.0.0.1")!, port: 5000))
    }

    func testIPv6Endpoint() {
        let endpoint = UDPEndpoint(IPv6Address("2001:db8::1")!, port: 443)
        XCTAssertEqual(endpoint.description, "[2001:db8::1]:443")
        XCTAssertEqual(endpoint.port, 443)
        XCTAssertEqual(UDPEndpoint(IPv6Address("::1")!, port: 1).description, "[::1]:1")
        XCTAssertEqual(UDPEndpoint(IPv6Address("::")!, port: 0).description, "[::]:0")
    }

    func testEquality() {
        XCTAssertEqual(UDPEndpoint(loopback, port: 5000, family: .ipv4), UDPEndpoint(loopback, port: 5000, family: .ipv4))
        XCTAssertEqual(UDPEndpoint(loopback, port: 5000, family: .ipv6), UDPEndpoint(loopback, port: 5000, family: .ipv6))
        XCTAssertNotEqual(UDPEndpoint(loopback, port: 5000, family: .ipv4), UDPEndpoint(loopback, port: 5001, family: .ipv4))
        XCTAssertNotEqual(UDPEndpoint(loopback, port: 5000, family: .ipv4),
                          UDPEndpoint(IPv4Address("127.0.0.2")!, port: 5000, family: .ipv4))
        XCTAssertNotEqual(UDPEndpoint(loopback, port: 5000, family: .ipv4), UDPEndpoint(loopback, port: 5000, family: .ipv6),
                          "different socket families are different endpoints")
        XCTAssertNotEqual(UDPEndpoint(IPv6Address("2001:db8::1")!, port: 443), UDPEndpoint(IPv6Address("2001:db8::2")!, port: 443))
        XCTAssertEqual(UDPEndpoint(IPv6Address("2001:db8::1")!, port: 443), UDPEndpoint(IPv6Address("2001:db8:0::1")!, port: 443))
    }

    func testEqualityIgnoresBytesPastTheLength() {
        var a = UDPEndpoint(loopback, port: 9, family: .ipv4)
        let b = a
        // Bytes past a sockaddr_in (left over from an earlier, longer address) are not part of the endpoint.
        withUnsafeMutableBytes(of: &a.storage) { $0[20] = 0x5a; $0[27] = 0xa5 }
        XCTAssertEqual(a, b)
        withUnsafeMutableBytes(of: &a.storage) { $0[4] = 128 }
        XCTAssertNotEqual(a, b)
    }

    func testWrapsRawStorage() {
        let original = UDPEndpoint(IPv6Address("fd00::7")!, port: 7000)
        let wrapped = UDPEndpoint(storage: original.storage, length: original.length)
        XCTAssertEqual(wrapped, original)
        XCTAssertEqual(wrapped.description, "[fd00::7]:7000")
    }
}

final class SystemErrorTests: XCTestCase {
    func testDescriptionHasOperationAndErrnoText() {
        let error = SystemError("open /dev/net/tun", code: ENOENT)
        XCTAssertEqual(error.operation, "open /dev/net/tun")
        XCTAssertEqual(error.code, ENOENT)
        XCTAssertEqual(error.description, "open /dev/net/tun: No such file or directory (errno 2)")
        XCTAssertEqual(SystemError("bind UDP port 1", code: EACCES).description, "bind UDP port 1: Permission denied (errno 13)")
        XCTAssertTrue(SystemError("x", code: 99999).description.hasPrefix("x: "))
        XCTAssertTrue(SystemError("x", code: 99999).description.hasSuffix(" (errno 99999)"))
        XCTAssertEqual(SystemError("a", code: 1), SystemError("a", code: 1))
        XCTAssertNotEqual(SystemError("a", code: 1), SystemError("a", code: 2))
    }

    func testRetryingInterruptsThrowsWithErrno() {
        XCTAssertThrowsError(try retryingInterrupts("close -1") { Glibc.close(-1) }) { error in
            XCTAssertEqual(error as? SystemError, SystemError("close -1", code: EBADF))
        }
        XCTAssertEqual(try retryingInterrupts("nothing") { 7 }, 7)
    }
}

final class HostEnvironmentTests: XCTestCase {
    func testLoopbackAddressesAreFiltered() {
        let (v4, v6) = HostEnvironment.interfaceAddresses("lo")
        XCTAssertFalse(v4.contains(IPv4Address("127.0.0.1")!), "\(v4)")
        XCTAssertFalse(v4.contains { $0.isLoopback || $0.isLinkLocal || $0.isUnspecified }, "\(v4)")
        XCTAssertFalse(v6.contains { $0.isLoopback || $0.isLinkLocal || $0.isUnspecified }, "\(v6)")
    }

    func testUnknownInterfaceHasNoAddresses() {
        let (v4, v6) = HostEnvironment.interfaceAddresses("no-such-if0")
        XCTAssertEqual(v4, [])
        XCTAssertEqual(v6, [])
    }
}
