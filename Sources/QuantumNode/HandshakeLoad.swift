import Glibc
import QuantumCrypto
import QuantumDevice
import Synchronization

/// Whether the node is under a handshake load, published for the workers. While it is,
/// they answer handshake messages without a valid mac2 with cookie replies instead of
/// handing them to the control thread (see `PacketPath`), so a flood costs HMACs and one
/// AES-GCM block per message rather than Diffie-Hellman.
///
/// The node counts as loaded for `holdTime` after the control thread's backlog reached
/// `backlogThreshold` events or `rateThreshold` handshake messages were handed to it
/// within one `window`, or a worker answered `rateThreshold` messages with cookies within
/// one `window` (so a flood keeps the node loaded while it lasts, though the control
/// thread no longer sees it): cheap to decide (under the inbox lock the control thread's
/// hand-off already takes, or in worker-local state) and cheap to read (one relaxed
/// atomic load per handshake message).
final class HandshakeLoad: Sendable {
    /// Backlog depth that means load: an eighth of the backlog, as in WireGuard.
    static let backlogThreshold = ControlPlane.handshakeBacklog / 8
    /// Handshake messages per `window` that mean load. A node of a few hundred peers that
    /// all rekey every two minutes sends far fewer; a flood sends thousands.
    static let rateThreshold = 100
    /// The window the rate is counted in.
    static let window: UInt64 = SessionLimits.nanosecondsPerSecond
    /// How long the node stays loaded after the last sign of load: two windows, so a flood
    /// that reaches the rate once per window keeps it loaded without a gap.
    static let holdTime: UInt64 = 2 * window

    /// The node's random cookie master secret; each worker's `CookieResponder` derives the
    /// secret of every 2-minute period from it.
    let cookieSecret: [UInt8]
    /// Monotonic time until which the node counts as loaded.
    private let loadedUntil = Atomic<UInt64>(0)

    init() {
        var generator = SystemRandomNumberGenerator()
        cookieSecret = (0..<CookieResponder.masterSecretSize).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// Whether the node is under load at `now`.
    @inline(__always)
    func isUnderLoad(now: UInt64) -> Bool {
        now < loadedUntil.load(ordering: .relaxed)
    }

    /// Records a sign of load at `now`.
    func markLoaded(now: UInt64) {
        loadedUntil.store(now &+ HandshakeLoad.holdTime, ordering: .relaxed)
    }
}

/// Handshake messages counted in the current window: those handed to the control thread
/// (kept in its inbox, updated under its lock) or those a worker answered with cookies.
struct HandshakeRate {
    private var windowStart: UInt64 = 0
    private var count = 0

    /// Counts one message handed over at `now` with `backlog` events already waiting.
    /// - Returns: whether that is a sign of load: a deep backlog, or the message that
    ///   reaches the rate (once per window, so a flood's workers do not all write the
    ///   shared flag for every message).
    mutating func record(backlog: Int, now: UInt64) -> Bool {
        if now &- windowStart >= HandshakeLoad.window {
            windowStart = now
            count = 0
        }
        count += 1
        return backlog >= HandshakeLoad.backlogThreshold || count == HandshakeLoad.rateThreshold
    }
}

/// Token buckets per source IP address for the initiations the control thread answers
/// while under load (those with a valid mac2: their senders receive at their address).
/// A fixed table, so memory is bounded however many addresses send; two addresses whose
/// hashes share a slot take turns owning it, each fresh owner starting with a full bucket.
/// The hash is seeded at random per process, so a sender cannot choose whom it evicts.
///
/// `rate` 20 per second with a `burst` of 5: a legitimate address sends one initiation per
/// peer per retry (5 s), so even a few dozen nodes behind one NAT address get through,
/// while one address can make the node do at most 20 Diffie-Hellman answers a second.
struct SourceRateLimiter {
    static let slots = 4096
    static let rate: UInt64 = 20
    static let burst: UInt64 = 5
    /// Nanoseconds of credit one initiation costs.
    static let cost = SessionLimits.nanosecondsPerSecond / rate
    private static let capacity = burst * cost

    private struct Bucket {
        var tag = 0
        var credit: UInt64 = 0
        var refilledAt: UInt64 = 0
    }

    private var buckets = [Bucket](repeating: Bucket(), count: slots)

    /// Whether an initiation from `source` at `now` is within its address's rate; if so it is counted.
    mutating func admits(_ source: UDPEndpoint, now: UInt64) -> Bool {
        let tag = source.withCookieIdentity { identity in
            var hasher = Hasher()
            hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: identity[0..<UDPEndpoint.cookieAddressSize]))
            return hasher.finalize()
        }
        let slot = Int(UInt(bitPattern: tag) % UInt(SourceRateLimiter.slots))
        if buckets[slot].tag != tag || buckets[slot].refilledAt == 0 {
            buckets[slot] = Bucket(tag: tag, credit: SourceRateLimiter.capacity, refilledAt: now)
        } else {
            let earned = now &- buckets[slot].refilledAt
            buckets[slot].credit = min(SourceRateLimiter.capacity, buckets[slot].credit &+ earned)
            buckets[slot].refilledAt = now
        }
        guard buckets[slot].credit >= SourceRateLimiter.cost else { return false }
        buckets[slot].credit -= SourceRateLimiter.cost
        return true
    }
}

extension UDPEndpoint {
    /// Bytes of the address part of a cookie identity.
    static let cookieAddressSize = 16

    /// Calls `body` with this endpoint's identity for cookies (`CookieResponder.identitySize`
    /// bytes, on the stack): the IP address as 16 bytes (IPv4 mapped into IPv6), then the
    /// port in network order.
    @inline(__always)
    func withCookieIdentity<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        var identity: (UInt64, UInt64, UInt16) = (0, 0, storage.sin6_port)
        withUnsafeMutableBytes(of: &identity) { bytes in
            withUnsafeBytes(of: storage) { address in
                if Int32(storage.sin6_family) == AF_INET {
                    bytes[10] = 0xff
                    bytes[11] = 0xff
                    let offset = MemoryLayout<sockaddr_in>.offset(of: \.sin_addr)!
                    for i in 0..<4 { bytes[12 + i] = address[offset + i] }
                } else {
                    let offset = MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)!
                    for i in 0..<UDPEndpoint.cookieAddressSize { bytes[i] = address[offset + i] }
                }
            }
        }
        return withUnsafeBytes(of: &identity) { body($0) }
    }
}
