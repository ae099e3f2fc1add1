import Crypto
import Synchronization

/// Limits on a session's lifetime, after the WireGuard paper's timers. Times are
/// in nanoseconds of a monotonic clock, the unit `Session` is given `now` in.
public enum SessionLimits {
    /// Nanoseconds per second, to express the limits below.
    public static let nanosecondsPerSecond: UInt64 = 1_000_000_000
    /// After this many messages sent, the session should be replaced (REKEY_AFTER_MESSAGES, 2^60).
    public static let rekeyAfterMessages: UInt64 = 1 << 60
    /// Counters at or above this are never used nor accepted (REJECT_AFTER_MESSAGES, 2^64 − 2^13 − 1).
    public static let rejectAfterMessages: UInt64 = UInt64.max - (1 << 13)
    /// Age at which the initiator should start a new handshake (REKEY_AFTER_TIME, 120 s).
    public static let rekeyAfterTime: UInt64 = 120 * nanosecondsPerSecond
    /// Age after which the session must not be used any more (REJECT_AFTER_TIME, 180 s).
    public static let rejectAfterTime: UInt64 = 180 * nanosecondsPerSecond
    /// How long to wait for a handshake response before retrying (REKEY_TIMEOUT, 5 s).
    public static let rekeyTimeout: UInt64 = 5 * nanosecondsPerSecond
    /// Send a keepalive if nothing was sent this long after receiving (KEEPALIVE_TIMEOUT, 10 s).
    public static let keepaliveTimeout: UInt64 = 10 * nanosecondsPerSecond
}

/// The outcome of `Session.open`.
public enum OpenResult: Equatable, Sendable {
    /// Authentic and fresh: the plaintext is at `offset` in the message buffer, decrypted in place.
    case payload(offset: Int, length: Int)
    /// The counter was already accepted or is older than the replay window.
    case replayed
    /// The tag did not verify (forged, corrupted, or another key).
    case authenticationFailed
    /// Too short, not a transport message, non-zero reserved bytes, or another receiver index.
    case malformed
    /// The counter is at or beyond `SessionLimits.rejectAfterMessages`, or the session was wiped.
    case exhausted
}

/// One established session: the transport keys of a completed handshake, used by
/// N worker threads at once.
///
/// Threading: every method may be called concurrently from different threads,
/// except `wipe()`. Worker `i` (0 ≤ i < `workers`) must be the only thread passing
/// `worker: i`, because each worker has its own sending and receiving
/// `AESGCMContext` and those are not thread-safe. The send counter is an atomic
/// (one `wrappingAdd` per packet). The replay window sits behind a mutex held only
/// for the check, and again for the accept, of one counter; it is contended only
/// when packets of the same peer are received on two queues at once.
/// That per-worker discipline is why the class is `@unchecked Sendable`.
///
/// `seal` and `open` allocate nothing, log nothing and take no other lock.
public final class Session: @unchecked Sendable {
    /// This node's index: received transport messages carry it as receiver index.
    public let localIndex: UInt32
    /// The peer's index: sent transport messages carry it as receiver index.
    public let remoteIndex: UInt32
    /// Whether this node initiated the handshake.
    public let isInitiator: Bool
    /// Monotonic time (ns) at which the session was established.
    public let createdAt: UInt64

    private let sendContexts: [AESGCMContext]
    private let receiveContexts: [AESGCMContext]
    private let sendCounter: Atomic<UInt64>
    private let replayWindow = Mutex(ReplayWindow())
    private let isWiped = Atomic<Bool>(false)

    /// A session from the keys of a completed handshake.
    /// - Parameters:
    ///   - keys: the handshake's output; the keys are read, not retained.
    ///   - workers: number of worker threads that will seal and open (at least 1).
    ///   - now: the current monotonic time in nanoseconds.
    /// - Throws: `CryptoError` if OpenSSL cannot set up a cipher context.
    public convenience init(keys: SessionKeys, workers: Int, now: UInt64) throws(CryptoError) {
        try self.init(keys: keys, workers: workers, now: now, firstSendCounter: 0)
    }

    /// As the public initializer, but sending starts at `firstSendCounter` (tests of exhaustion).
    init(keys: SessionKeys, workers: Int, now: UInt64, firstSendCounter: UInt64) throws(CryptoError) {
        precondition(workers > 0, "a session needs at least one worker")
        var sending: [AESGCMContext] = []
        var receiving: [AESGCMContext] = []
        for _ in 0..<workers {
            sending.append(try Self.context(keys.sendingKey))
            receiving.append(try Self.context(keys.receivingKey))
        }
        sendContexts = sending
        receiveContexts = receiving
        sendCounter = Atomic(firstSendCounter)
        localIndex = keys.localIndex
        remoteIndex = keys.remoteIndex
        isInitiator = keys.isInitiator
        createdAt = now
    }

    private static func context(_ key: SymmetricKey) throws(CryptoError) -> AESGCMContext {
        // Typed throws cannot cross withUnsafeBytes, so carry the result out.
        let result: Result<AESGCMContext, CryptoError> = key.withUnsafeBytes { bytes in
            do throws(CryptoError) { return .success(try AESGCMContext(key: bytes)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Number of counters handed out for sending so far.
    public var sentMessages: UInt64 {
        min(sendCounter.load(ordering: .relaxed), SessionLimits.rejectAfterMessages)
    }

    /// Seals one transport message in place.
    ///
    /// The caller has put `payloadLength` plaintext bytes at
    /// `buffer + WireFormat.transportHeaderSize` and guarantees `WireFormat.tagSize`
    /// writable bytes after them. This writes the header in front, encrypts the
    /// payload in place and writes the tag after it.
    /// - Returns: the length of the whole message starting at `buffer`, or nil if the
    ///   session has run out of counters (or was wiped); then a new session is needed.
    public func seal(_ buffer: UnsafeMutableRawPointer, payloadLength: Int, worker: Int, flags: UInt8) -> Int? {
        guard !isWiped.load(ordering: .acquiring) else { return nil }
        let counter = sendCounter.wrappingAdd(1, ordering: .relaxed).oldValue
        guard counter < SessionLimits.rejectAfterMessages else {
            // Pull the counter back so repeated calls can never wrap it to a used value:
            // it overshoots by at most the number of concurrent workers (far below 2^13).
            sendCounter.store(SessionLimits.rejectAfterMessages, ordering: .relaxed)
            return nil
        }
        buffer.storeBytes(of: MessageType.transport.rawValue, as: UInt8.self)
        buffer.storeBytes(of: flags, toByteOffset: WireFormat.transportFlagsOffset, as: UInt8.self)
        buffer.storeBytes(of: 0, toByteOffset: WireFormat.transportFlagsOffset + 1, as: UInt16.self)
        buffer.storeBytes(of: remoteIndex.littleEndian, toByteOffset: WireFormat.transportReceiverIndexOffset, as: UInt32.self)
        buffer.storeBytes(of: counter.littleEndian, toByteOffset: WireFormat.transportCounterOffset, as: UInt64.self)
        let header = UnsafeRawBufferPointer(start: buffer, count: WireFormat.transportHeaderSize)
        let payload = UnsafeMutableRawBufferPointer(start: buffer + WireFormat.transportHeaderSize, count: payloadLength)
        let tag = buffer + WireFormat.transportHeaderSize + payloadLength
        guard sendContexts[worker].seal(counter: counter, additionalData: header, inPlace: payload, tag: tag) else {
            return nil
        }
        return payloadLength + WireFormat.transportOverhead
    }

    /// Authenticates and decrypts one received transport message in place.
    ///
    /// Order: size and header → replay pre-check → decrypt → record the counter, so a
    /// forged message can neither pass nor move the replay window.
    public func open(_ message: UnsafeMutableRawBufferPointer, worker: Int) -> OpenResult {
        guard !isWiped.load(ordering: .acquiring) else { return .exhausted }
        let bytes = UnsafeRawBufferPointer(message)
        guard TransportHeader.receiverIndex(bytes) == localIndex,
              bytes[WireFormat.transportFlagsOffset + 1] | bytes[WireFormat.transportFlagsOffset + 2] == 0,
              let counter = TransportHeader.counter(bytes)
        else { return .malformed }
        guard counter < SessionLimits.rejectAfterMessages else { return .exhausted }
        guard replayWindow.withLock({ $0.check(counter) }) else { return .replayed }

        let base = message.baseAddress!
        let payloadLength = message.count - WireFormat.transportOverhead
        let header = UnsafeRawBufferPointer(start: base, count: WireFormat.transportHeaderSize)
        let payload = UnsafeMutableRawBufferPointer(start: base + WireFormat.transportHeaderSize, count: payloadLength)
        let tag = UnsafeRawPointer(base + WireFormat.transportHeaderSize + payloadLength)
        guard receiveContexts[worker].open(counter: counter, additionalData: header, inPlace: payload, tag: tag) else {
            return .authenticationFailed
        }
        // Another worker may have accepted the same counter since the pre-check.
        guard replayWindow.withLock({ $0.accept(counter) }) else { return .replayed }
        return .payload(offset: WireFormat.transportHeaderSize, length: payloadLength)
    }

    /// Whether a new handshake should replace this session: after
    /// `rekeyAfterMessages` sent messages, or (initiator only) once it is
    /// `rekeyAfterTime` old.
    public func shouldRekey(now: UInt64) -> Bool {
        if sentMessages >= SessionLimits.rekeyAfterMessages { return true }
        return isInitiator && age(now: now) >= SessionLimits.rekeyAfterTime
    }

    /// Whether the session is too old to be used at all (`rejectAfterTime`).
    public func isExpired(now: UInt64) -> Bool {
        age(now: now) >= SessionLimits.rejectAfterTime
    }

    /// Frees the cipher contexts now (OpenSSL cleanses the key schedules); afterwards
    /// `seal` returns nil and `open` returns `.exhausted`. Without a call, the same
    /// happens at deinit.
    ///
    /// Not concurrent-safe: call only once no worker can be inside `seal` or `open`
    /// of this session (e.g. after it left the peer table and every worker has
    /// finished its current batch).
    public func wipe() {
        isWiped.store(true, ordering: .releasing)
        for context in sendContexts { context.wipe() }
        for context in receiveContexts { context.wipe() }
    }

    private func age(now: UInt64) -> UInt64 {
        now > createdAt ? now - createdAt : 0
    }
}
