import CQuantumLinux
import Glibc
import QuantumCore

/// What the node needs to know about its host before it starts: whether it may
/// create a TUN device, and which public addresses it has.
public enum HostEnvironment {
    /// Why the node cannot create its TUN device.
    public struct MissingPrivilege: Error, CustomStringConvertible {
        public let description: String
    }

    /// Checks for CAP_NET_ADMIN (or root) and a usable /dev/net/tun, without side effects.
    public static func checkTunPrivileges() throws(MissingPrivilege) {
        if qt_has_cap_net_admin() != 1 {
            throw MissingPrivilege(description:
                "root or CAP_NET_ADMIN is needed to create the TUN device (uid \(getuid()) has no CAP_NET_ADMIN)")
        }
        var status = stat()
        guard stat("/dev/net/tun", &status) == 0 else {
            throw MissingPrivilege(description: "/dev/net/tun is missing: load the tun module (modprobe tun) or create the device node")
        }
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            throw MissingPrivilege(description: "/dev/net/tun cannot be opened: \(SystemError("open", code: errno).description)")
        }
        close(fd)
    }

    /// The first global IPv4 address of the interface holding the IPv4 default route
    /// (from /proc/net/route), never loopback or link-local.
    public static func defaultRouteIPv4() -> IPv4Address? {
        guard let table = readFile("/proc/net/route") else { return nil }
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
            guard fields.count >= 8, fields[1] == "00000000", fields[7] == "00000000" else { continue }
            if let address = interfaceAddresses(String(fields[0])).v4.first { return address }
        }
        return nil
    }

    /// The first global IPv6 address of the interface holding the IPv6 default route
    /// (from /proc/net/ipv6_route), never loopback or link-local.
    public static func defaultRouteIPv6() -> IPv6Address? {
        guard let table = readFile("/proc/net/ipv6_route") else { return nil }
        for line in table.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            // dest destlen src srclen nexthop metric refcnt use flags iface
            guard fields.count >= 10, fields[0] == String(repeating: "0", count: 32), fields[1] == "00",
                  fields[9] != "lo" else { continue }
            if let address = interfaceAddresses(String(fields[9])).v6.first { return address }
        }
        return nil
    }

    /// The usable (not loopback, link-local or unspecified) addresses of an interface.
    public static func interfaceAddresses(_ name: String) -> (v4: [IPv4Address], v6: [IPv6Address]) {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return ([], []) }
        defer { freeifaddrs(list) }
        var v4: [IPv4Address] = []
        var v6: [IPv6Address] = []
        var cursor = list
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, String(cString: entry.pointee.ifa_name) == name else { continue }
            switch Int32(address.pointee.sa_family) {
            case AF_INET:
                let raw = UnsafeRawPointer(address).load(as: sockaddr_in.self)
                let value = IPv4Address(UInt32(bigEndian: raw.sin_addr.s_addr))
                if !value.isLoopback && !value.isLinkLocal && !value.isUnspecified { v4.append(value) }
            case AF_INET6:
                let raw = UnsafeRawPointer(address).load(as: sockaddr_in6.self)
                let bytes = withUnsafeBytes(of: raw.sin6_addr) { Array($0) }
                if let value = IPv6Address(bytes: bytes), !value.isLoopback, !value.isLinkLocal, !value.isUnspecified {
                    v6.append(value)
                }
            default:
                continue
            }
        }
        return (v4, v6)
    }

    private static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
