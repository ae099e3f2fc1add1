import Glibc
import QuantumCrypto

/// Nanoseconds on the monotonic clock: the time base of sessions and timers.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// The control plane's source of time, injected so tests can drive its timers
/// with a fake clock instead of sleeping.
protocol ControlClock: Sendable {
    /// Monotonic nanoseconds (the time base of `Session` and `PeerSignals`).
    func now() -> UInt64
    /// Wall-clock time for handshake initiations (peers reject timestamps that do not grow).
    func timestamp() -> TAI64N
}

/// The real clocks: `CLOCK_MONOTONIC` and the system's wall clock.
struct SystemClock: ControlClock {
    func now() -> UInt64 { monotonicNanoseconds() }
    func timestamp() -> TAI64N { TAI64N.now() }
}
