import Glibc

/// Tells the service manager about the daemon's state (systemd's `sd_notify` protocol):
/// one datagram of `KEY=value` lines to the `AF_UNIX` socket named by `$NOTIFY_SOCKET`
/// (a path, or `@name` for the abstract namespace). Does nothing when that is unset, so a
/// daemon started by hand is unaffected.
struct ServiceNotifier: Sendable {
    /// The socket address, nil when not running under a service manager that listens.
    let socketPath: String?

    init(environment: [String: String]) {
        socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The node is up (after the start-up summary), or up again after a reload.
    func ready() -> String? { send(["READY=1"]) }

    /// A rolling restart begins; `MONOTONIC_USEC` as systemd asks of `Type=notify-reload`.
    func reloading() -> String? {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return send(["RELOADING=1", "MONOTONIC_USEC=\(Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000)"])
    }

    /// This process took over from the one the manager knew as the main process.
    func tookOver() -> String? { send(["MAINPID=\(getpid())", "READY=1"]) }

    /// The daemon is stopping.
    func stopping() -> String? { send(["STOPPING=1"]) }

    /// Sends one datagram of `fields`, one per line. Returns nil on success (or when there is
    /// no socket), else why it failed, for a warning.
    func send(_ fields: [String]) -> String? {
        guard let socketPath else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { return "NOTIFY_SOCKET \(socketPath) is longer than \(capacity - 1) bytes" }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (path.first == 0 ? 0 : 1))
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return "cannot open a socket for NOTIFY_SOCKET: \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        let message = Array(fields.joined(separator: "\n").utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), target, length) }
            }
        }
        return sent < 0 ? "cannot notify \(socketPath): \(String(cString: strerror(errno)))" : nil
    }
}
