import CQuantumLinux
import Glibc
import Synchronization

/// One end of the local stream socket (an `AF_UNIX` socketpair) over which a running
/// daemon and the copy of itself that replaces it talk during a rolling restart.
///
/// A message is a kind byte, a 4-byte big-endian payload length and the payload; open
/// file descriptors may ride along with a message (`SCM_RIGHTS`: the receiver gets new
/// descriptors for the same open files). Received descriptors are close-on-exec. Calls
/// block, bounded by a deadline; use one thread per end at a time.
public final class HandoverChannel: Sendable {
    /// The socket's descriptor (the child learns its number through its environment).
    public let fileDescriptor: Int32
    /// Set by `close()`: afterwards the descriptor number may belong to another file, so
    /// nothing is sent or received through it.
    private let closed = Atomic<Bool>(false)

    /// Wraps an open stream socket, e.g. one inherited from the parent process.
    public init(fileDescriptor: Int32) {
        self.fileDescriptor = fileDescriptor
    }

    /// A connected pair; both ends are close-on-exec.
    public static func pair() throws(SystemError) -> (HandoverChannel, HandoverChannel) {
        var fds: [Int32] = [0, 0]
        try retryingInterrupts("socketpair") {
            socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds)
        }
        return (HandoverChannel(fileDescriptor: fds[0]), HandoverChannel(fileDescriptor: fds[1]))
    }

    /// Sends one message, with `fds` attached to its first byte. The payload is written
    /// straight from the caller's buffer (nothing is copied that the caller cannot wipe).
    public func send(kind: UInt8, payload: [UInt8], fds: [Int32] = []) throws(SystemError) {
        guard !closed.load(ordering: .acquiring) else { throw SystemError("send on the closed handover channel", code: EBADF) }
        let length = UInt32(payload.count)
        let header: [UInt8] = [kind, UInt8(length >> 24), UInt8(length >> 16 & 0xff),
                               UInt8(length >> 8 & 0xff), UInt8(length & 0xff)]
        let sent = header.withUnsafeBytes { bytes in
            fds.withUnsafeBufferPointer { qt_send_fds(fileDescriptor, bytes.baseAddress, bytes.count, $0.baseAddress, UInt32($0.count)) }
        }
        guard sent >= 0 else { throw SystemError("send on the handover channel", code: -sent) }
        try writeAll(Array(header[Int(sent)...]))
        try writeAll(payload)
    }

    private func writeAll(_ bytes: [UInt8]) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.send(fileDescriptor, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError("send on the handover channel", code: errno)
            }
            offset += count
        }
    }

    /// Receives one message, waiting at most `timeoutMilliseconds` for all of it.
    /// Throws `ETIMEDOUT` past that time, `ECONNRESET` when the other end closed first,
    /// `EMSGSIZE` for a payload longer than `maximumLength`.
    public func receive(timeoutMilliseconds: Int, maximumLength: Int) throws(SystemError) -> (kind: UInt8, payload: [UInt8], fds: [Int32]) {
        guard !closed.load(ordering: .acquiring) else { throw SystemError("receive on the closed handover channel", code: EBADF) }
        let deadline = Self.now() + UInt64(timeoutMilliseconds) * 1_000_000
        var header = [UInt8](repeating: 0, count: 5)
        var fds: [Int32] = []
        var filled = 0
        while filled < header.count {
            try waitReadable(until: deadline)
            var passed = [Int32](repeating: -1, count: Int(QT_MAX_PASSED_FDS))
            var passedCount: UInt32 = 0
            let count = header.withUnsafeMutableBytes { bytes in
                qt_recv_fds(fileDescriptor, bytes.baseAddress! + filled, bytes.count - filled,
                            &passed, UInt32(passed.count), &passedCount)
            }
            fds += passed.prefix(Int(passedCount))
            guard count > 0 else {
                fds.forEach { _ = Glibc.close($0) }
                throw SystemError("receive on the handover channel", code: count == 0 ? ECONNRESET : -count)
            }
            filled += Int(count)
        }
        let length = Int(header[1]) << 24 | Int(header[2]) << 16 | Int(header[3]) << 8 | Int(header[4])
        guard length <= maximumLength else {
            fds.forEach { _ = Glibc.close($0) }
            throw SystemError("receive a \(length)-byte handover message", code: EMSGSIZE)
        }
        var payload = [UInt8](repeating: 0, count: length)
        filled = 0
        while filled < length {
            do {
                try waitReadable(until: deadline)
            } catch {
                fds.forEach { _ = Glibc.close($0) }
                throw error
            }
            let count = payload.withUnsafeMutableBytes { Glibc.recv(fileDescriptor, $0.baseAddress! + filled, length - filled, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let code = count == 0 ? ECONNRESET : errno
                fds.forEach { _ = Glibc.close($0) }
                throw SystemError("receive on the handover channel", code: code)
            }
            filled += count
        }
        return (header[0], payload, fds)
    }

    private func waitReadable(until deadline: UInt64) throws(SystemError) {
        while true {
            let now = Self.now()
            guard now < deadline else { throw SystemError("wait on the handover channel", code: ETIMEDOUT) }
            var descriptor = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min((deadline - now) / 1_000_000 + 1, 1000)))
            if ready > 0 { return }
            if ready < 0 && errno != EINTR { throw SystemError("poll the handover channel", code: errno) }
        }
    }

    private static func now() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Closes the socket (once; later calls do nothing).
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        _ = Glibc.close(fileDescriptor)
    }
}
