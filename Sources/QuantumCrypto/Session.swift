import Crypto
import Glibc
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
    private let replayWindow: Mutex<ReplayWindow>
    private let isWiped = Atomic<Bool>(false)
    /// The raw keys, kept only so that `snapshot(now:)` can hand the session to the process
    /// that replaces this one; `SymmetricKey` zeroes them when released (at `wipe()` or deinit).
    private var keys: (sending: SymmetricKey, receiving: SymmetricKey)?

    /// A session from the keys of a completed handshake.
    /// - Parameters:
    ///   - keys: the handshake's output; the keys are kept (for `snapshot(now:)`) until `wipe()` or deinit.
    ///   - workers: number of worker threads that will seal and open (at least 1).
    ///   - now: the current monotonic time in nanoseconds.
    /// - Throws: `CryptoError` if OpenSSL cannot set up a cipher context.
    public convenience init(keys: SessionKeys, workers: Int, now: UInt64) throws(CryptoError) {
        try self.init(keys: keys, workers: workers, now: now, firstSendCounter: 0)
    }

    /// As the public initializer, but sending starts at `firstSendCounter` (tests of exhaustion).
    convenience init(keys: SessionKeys, workers: Int, now: UInt64, firstSendCounter: UInt64) throws(CryptoError) {
        try self.init(keys: keys, workers: workers, createdAt: now, firstSendCounter: firstSendCounter,
                      replayWindow: ReplayWindow())
    }

    private init(keys: SessionKeys, workers: Int, createdAt: UInt64, firstSendCounter: UInt64,
                 replayWindow: ReplayWindow) throws(CryptoError) {
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
        self.replayWindow = Mutex(replayWindow)
        localIndex = keys.localIndex
        remoteIndex = keys.remoteIndex
        isInitiator = keys.isInitiator
        self.createdAt = createdAt
        self.keys = (keys.sendingKey, keys.receivingKey)
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
        keys = nil
        for context in sendContexts { context.wipe() }
        for context in receiveContexts { context.wipe() }
    }

    private func age(now: UInt64) -> UInt64 {
        now > createdAt ? now - createdAt : 0
    }
}

// Handing a live session to another process (the rolling restart): the only way raw
// keys leave a `Session`. The snapshot is taken while no worker seals or opens with the
// session (the data path is stopped), and the session it came from must never seal
// again once the snapshot's holder may have, or counters (GCM nonces) would repeat.
extension Session {
    /// A session's complete state: indices, role, where its send counter stands, its replay
    /// window, its age, and its keys.
    ///
    /// `Codable` covers everything except `keyMaterial`, which the coding keys leave out so
    /// that key bytes never pass through an encoder's buffers: carry it separately and
    /// wipe it (`Session.wipe(_:)`) after use.
    public struct Snapshot: Codable, Sendable, Equatable {
        public var localIndex: UInt32
        public var remoteIndex: UInt32
        public var isInitiator: Bool
        /// The counter the next sealed message will use.
        public var nextSendCounter: UInt64
        public var replayWindow: ReplayWindow
        /// Nanoseconds since the session was established.
        public var age: UInt64
        /// The sending key followed by the receiving key (`keyMaterialSize` bytes), or empty
        /// when not yet attached.
        public var keyMaterial: [UInt8] = []

        /// Bytes of `keyMaterial`: two AES-256 keys.
        public static let keyMaterialSize = 2 * AESGCMContext.keySize

        enum CodingKeys: String, CodingKey {
            case localIndex, remoteIndex, isInitiator, nextSendCounter, replayWindow, age
        }
    }

    /// The session's state at `now`; nil once wiped. Call only while no worker uses the session.
    public func snapshot(now: UInt64) -> Snapshot? {
        guard let keys, !isWiped.load(ordering: .acquiring) else { return nil }
        var material = keys.sending.withUnsafeBytes { Array($0) }
        keys.receiving.withUnsafeBytes { material.append(contentsOf: $0) }
        return Snapshot(localIndex: localIndex, remoteIndex: remoteIndex, isInitiator: isInitiator,
                        nextSendCounter: sendCounter.load(ordering: .relaxed),
                        replayWindow: replayWindow.withLock { $0 }, age: now > createdAt ? now - createdAt : 0,
                        keyMaterial: material)
    }

    /// Continues a session from a snapshot: sending resumes at its counter, the replay window
    /// is the snapshot's, and the age carries over (so rekey and expiry times are unchanged).
    /// - Throws: `CryptoError.invalidKeyLength` unless `keyMaterial` holds both keys.
    public convenience init(restoring snapshot: Snapshot, workers: Int, now: UInt64) throws(CryptoError) {
        guard snapshot.keyMaterial.count == Snapshot.keyMaterialSize else {
            throw .invalidKeyLength(what: "session key material", expected: Snapshot.keyMaterialSize,
                                    actual: snapshot.keyMaterial.count)
        }
        let half = AESGCMContext.keySize
        let keys = SessionKeys(sendingKey: SymmetricKey(data: snapshot.keyMaterial[..<half]),
                               receivingKey: SymmetricKey(data: snapshot.keyMaterial[half...]),
                               localIndex: snapshot.localIndex, remoteIndex: snapshot.remoteIndex,
                               isInitiator: snapshot.isInitiator)
        try self.init(keys: keys, workers: workers, createdAt: now > snapshot.age ? now - snapshot.age : 0,
                      firstSendCounter: snapshot.nextSendCounter, replayWindow: snapshot.replayWindow)
    }

    /// Overwrites the storage of `bytes` with zeros in a way the optimizer cannot drop (key
    /// material, buffers that held it). The storage itself is wiped, without the copy a
    /// mutation of a shared array would make: every array sharing it reads zeros afterwards.
    public static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress, buffer.count > 0 else { return }
            explicit_bzero(UnsafeMutableRawPointer(mutating: base), buffer.count)
        }
    }
}
