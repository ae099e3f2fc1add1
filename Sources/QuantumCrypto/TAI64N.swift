#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A TAI64N timestamp (12 bytes on the wire, big-endian): an 8-byte label
/// `2^62 + seconds since the Unix epoch`, then 4 bytes of nanoseconds.
///
/// The initiation carries one, encrypted; a responder accepts an initiation only if
/// its timestamp is newer than the last one seen from that peer, which defeats
/// replayed initiations. Only ordering between one sender's timestamps matters,
/// so the Unix clock is used as is (no leap-second offset).
public struct TAI64N: Sendable, Comparable, Hashable, CustomStringConvertible {
    /// Size on the wire in bytes.
    public static let size = 12
    /// The TAI64 label of the Unix epoch (2^62).
    public static let epochLabel: UInt64 = 1 << 62
    /// Nanoseconds in one second; the upper bound (exclusive) of `nanoseconds`.
    public static let nanosecondsPerSecond: UInt32 = 1_000_000_000

    /// The TAI64 label: `2^62 + Unix seconds`.
    public let label: UInt64
    /// Nanoseconds within the second.
    public let nanoseconds: UInt32

    /// A timestamp `unixSeconds` + `nanoseconds` after the Unix epoch.
    public init(unixSeconds: UInt64, nanoseconds: UInt32) {
        precondition(nanoseconds < Self.nanosecondsPerSecond, "nanoseconds out of range")
        label = Self.epochLabel &+ unixSeconds
        self.nanoseconds = nanoseconds
    }

    /// Decodes the 12-byte wire form; nil if it is not exactly 12 bytes.
    /// Out-of-range nanoseconds are kept as sent: they only affect ordering.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.size else { return nil }
        let array = Array(bytes)
        label = array[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
        nanoseconds = array[8..<12].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// The current wall-clock time.
    public static func now() -> TAI64N {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return TAI64N(unixSeconds: UInt64(max(0, spec.tv_sec)), nanoseconds: UInt32(spec.tv_nsec))
    }

    /// The 12-byte big-endian wire form.
    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: label >> (56 - 8 * $0)) }
            + (0..<4).map { UInt8(truncatingIfNeeded: nanoseconds >> (24 - 8 * $0)) }
    }

    public static func < (lhs: TAI64N, rhs: TAI64N) -> Bool {
        (lhs.label, lhs.nanoseconds) < (rhs.label, rhs.nanoseconds)
    }

    public var description: String {
        "TAI64N(unix: \(label &- Self.epochLabel).\(nanoseconds))"
    }
}
