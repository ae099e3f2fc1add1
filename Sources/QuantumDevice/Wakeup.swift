import CQuantumLinux
import Glibc

/// Waits for any of a worker's descriptors to become readable, and lets another
/// thread wake every waiter (shutdown, or work handed to the worker).
public final class Poller: @unchecked Sendable {
    // The eventfd is only read and written with atomic kernel calls; safe from any thread.
    private let wakeDescriptor: Int32

    public init() throws(SystemError) {
        let fd = qt_eventfd()
        guard fd >= 0 else { throw SystemError("eventfd", code: -fd) }
        wakeDescriptor = fd
    }

    deinit { close(wakeDescriptor) }

    /// Wakes every thread blocked in `wait` (level-triggered until `clearWake`).
    public func wake() {
        var one: UInt64 = 1
        _ = write(wakeDescriptor, &one, 8)
    }

    /// Resets the wake signal.
    public func clearWake() {
        var value: UInt64 = 0
        _ = read(wakeDescriptor, &value, 8)
    }

    /// Blocks until one of `descriptors` is readable, `wake` is called, or `timeoutMilliseconds` pass.
    /// Returns false when woken (or on timeout), true when a descriptor is readable.
    public func wait(_ descriptors: (Int32, Int32), timeoutMilliseconds: Int32) -> Bool {
        var fds = (pollfd(fd: descriptors.0, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: descriptors.1, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0))
        let ready = withUnsafeMutableBytes(of: &fds) {
            poll($0.baseAddress!.assumingMemoryBound(to: pollfd.self), 3, timeoutMilliseconds)
        }
        guard ready > 0 else { return false }
        return fds.2.revents == 0
    }
}
