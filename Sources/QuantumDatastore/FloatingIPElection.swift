import Foundation
import Logging
import QuantumCore
import Synchronization

/// Who holds a floating IP: the value of `<prefix>/floating/<ip>` (DESIGN.md §4).
public struct FloatingHolder: Equatable, Sendable {
    /// The holder's private address, where peers send the floating IP's traffic.
    public var privateIP: IPv4Address
    /// The holder's machine ID.
    public var machineID: String

    public init(privateIP: IPv4Address, machineID: String) {
        self.privateIP = privateIP
        self.machineID = machineID
    }

    private struct Wire: Codable {
        var privateIP: String
        var machineID: String
    }

    /// The JSON stored under the floating IP's key.
    public func json() -> [UInt8] {
        // Two strings always encode, so this cannot trap.
        Array(try! JSONEncoder().encode(Wire(privateIP: privateIP.description, machineID: machineID)))
    }

    /// Parses a stored value; nil when it is not a holder's JSON.
    public static func parse(json bytes: [UInt8]) -> FloatingHolder? {
        guard let wire = try? JSONDecoder().decode(Wire.self, from: Data(bytes)),
              let address = IPv4Address(wire.privateIP), !wire.machineID.isEmpty else { return nil }
        return FloatingHolder(privateIP: address, machineID: wire.machineID)
    }
}

/// Floating IPs with failover, on etcd v3 (issue 6 §1): one key per floating IP,
/// `<prefix>/floating/<ip>`, bound to a lease of the floating TTL.
///
/// - A candidate takes a free floating IP with a create-if-absent transaction
///   (`create_revision == 0`) bound to its lease, so there is never a second holder.
/// - The holder keeps its lease alive every TTL/3 (``contend(now:)``).
/// - Every node follows the prefix (``PrefixFollower``, as the map of nodes) and so knows
///   each floating IP's holder; when a key disappears (its holder died and the lease ran
///   out, or it released), candidates try the transaction at once.
/// - A holder that cannot renew stops counting itself as holder at its last successful
///   renewal (the time the request was sent) + TTL − ``safetyMargin``: etcd's deadline for
///   the lease is later than that, so the address is gone here before anyone else can take
///   it. When etcd answers again it competes like any candidate.
/// - A clean stop revokes the lease, deleting its keys at once (``release()``).
///
/// The clock is injected: ``contend(now:)`` and ``expire(now:)`` take the time, so
/// tests drive every timer without sleeping; ``run(clock:syncInterval:onChange:)`` wires them
/// to real time.
public final class FloatingIPElection: Sendable {
    /// What this node currently sees under the prefix, per floating IP.
    struct Observed: Equatable {
        /// Nil when the stored value is not a holder's JSON (held by someone unknown).
        var holder: FloatingHolder?
        var lease: Int64
    }

    private struct State {
        var observed: [IPv4Address: Observed] = [:]
        /// This node's lease for the keys it holds; nil until granted or after it was lost.
        var lease: Int64?
        /// Monotonic time at which the last successful grant or keep-alive was sent.
        var lastRenewal: UInt64 = 0
        /// The floating IPs this node holds, as far as it may assume.
        var held: Set<IPv4Address> = []
        /// What `onChange` last received.
        var published: [IPv4Address: IPv4Address]?
    }

    /// The key prefix of floating IPs, with the trailing slash (`/quantum/floating/`).
    public let keyPrefix: String
    /// This node as a holder.
    public let me: FloatingHolder
    /// The floating IPs this node competes for.
    public let candidates: [IPv4Address]
    /// The lease TTL in seconds.
    public let ttlSeconds: Int64
    private let floatingRange: IPv4Prefix
    private let store: any Datastore
    private let logger: Logger
    private let state = Mutex(State())
    private let changes: Mutex<(@Sendable ([IPv4Address: IPv4Address]) -> Void)?> = Mutex(nil)

    /// - Parameters:
    ///   - prefix: the network's key prefix, e.g. `/quantum`.
    ///   - candidates: the floating IPs this node competes for (none: it only follows).
    ///   - floatingRange: keys for addresses outside it are ignored with a warning.
    public init(store: any Datastore, prefix: String, me: FloatingHolder, candidates: [IPv4Address],
                ttlSeconds: Int64, floatingRange: IPv4Prefix, logger: Logger) {
        var trimmed = prefix
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        keyPrefix = "\(trimmed)/floating/"
        self.store = store
        self.me = me
        self.candidates = candidates
        self.ttlSeconds = ttlSeconds
        self.floatingRange = floatingRange
        self.logger = logger
    }

    /// The key of one floating IP.
    public func key(_ address: IPv4Address) -> String { "\(keyPrefix)\(address)" }

    /// The lease TTL in nanoseconds.
    public var ttl: UInt64 { UInt64(ttlSeconds) * 1_000_000_000 }
    /// How often the holder renews its lease: a third of the TTL, so two renewals may fail
    /// before the hold runs out.
    public var renewalInterval: UInt64 { ttl / 3 }
    /// How long before etcd's deadline the holder gives an address up when it cannot renew:
    /// a tenth of the TTL, at least 500 ms. It covers the renewal request's time in flight
    /// (etcd's deadline runs from when it received the renewal, ours from when it was sent)
    /// and the time to take the address off the device.
    public var safetyMargin: UInt64 { max(ttl / 10, 500_000_000) }
    /// How long after its last successful renewal the holder still counts itself as holder.
    public var holdLimit: UInt64 { ttl - safetyMargin }

    /// The floating IPs this node holds now.
    public var held: Set<IPv4Address> { state.withLock { $0.held } }

    /// Each floating IP with a known holder, mapped to that holder's private address. This
    /// node appears only for the addresses it holds as far as it may assume (not for keys
    /// still naming it after it gave them up).
    public func holders() -> [IPv4Address: IPv4Address] {
        state.withLock { view(of: $0) }
    }

    private func view(of state: State) -> [IPv4Address: IPv4Address] {
        var view: [IPv4Address: IPv4Address] = [:]
        for (address, observed) in state.observed {
            guard let holder = observed.holder, holder != me else { continue }
            view[address] = holder.privateIP
        }
        for address in state.held { view[address] = me.privateIP }
        return view
    }

    // MARK: The view of the prefix

    /// Replaces the view with a full listing of the prefix. Returns true when a candidate is
    /// free (the caller should contend).
    @discardableResult
    public func observe(listing items: [KeyValue]) -> Bool {
        var fresh: [IPv4Address: Observed] = [:]
        for item in items {
            if let (address, observed) = parse(item) { fresh[address] = observed }
        }
        return state.withLock { state in
            state.observed = fresh
            return hasFreeCandidate(state)
        }
    }

    /// Applies one watch message. Returns true when a candidate is free.
    @discardableResult
    public func observe(events: [WatchEvent]) -> Bool {
        let parsed: [(IPv4Address, Observed?)] = events.compactMap { event in
            switch event {
            case .put(let item):
                guard let (address, observed) = parse(item) else { return nil }
                return (address, observed)
            case .delete(let key, _):
                return IPv4Address(key.dropFirst(keyPrefix.count)).map { ($0, nil) }
            }
        }
        return state.withLock { state in
            for (address, observed) in parsed { state.observed[address] = observed }
            return hasFreeCandidate(state)
        }
    }

    private func hasFreeCandidate(_ state: State) -> Bool {
        candidates.contains { !state.held.contains($0) && state.observed[$0] == nil }
    }

    private func parse(_ item: KeyValue) -> (IPv4Address, Observed)? {
        guard let address = IPv4Address(item.key.dropFirst(keyPrefix.count)), floatingRange.contains(address) else {
            logger.warning("skipping a floating IP key that is not an address of the floating range",
                           metadata: ["key": "\(item.key)", "floatingRange": "\(floatingRange)"])
            return nil
        }
        let holder = FloatingHolder.parse(json: item.value)
        if holder == nil {
            logger.warning("a floating IP key holds a value that is not a holder; the address counts as taken",
                           metadata: ["key": "\(item.key)"])
        }
        return (address, Observed(holder: holder, lease: item.lease))
    }

    // MARK: Holding

    /// One round of the election at monotonic time `now` (nanoseconds): gets a lease if
    /// there is none, renews it when ``renewalInterval`` has passed since the last renewal,
    /// and tries to take every candidate that
    /// is free (or still bound to this node's lease). A datastore error ends the round with
    /// one warning; what is held stays held until ``expire(now:)`` says otherwise.
    public func contend(now: UInt64) async {
        guard !candidates.isEmpty else { return }
        do {
            let due = state.withLock { now &- $0.lastRenewal >= renewalInterval }
            let lease = try await currentLease(now: now, renew: due)
            for address in candidates {
                let (held, observed) = state.withLock { ($0.held.contains(address), $0.observed[address]) }
                guard !held else { continue }
                if let observed, observed.lease != lease { continue }
                let taken: Bool
                if observed != nil {
                    // Still bound to our live lease: ours again (after a hold that ran out locally).
                    taken = true
                } else {
                    taken = try await store.create(key(address), value: me.json(), lease: lease)
                }
                guard taken else { continue }
                let stillOurs = state.withLock { state in
                    guard state.lease == lease else { return false }
                    state.held.insert(address)
                    state.observed[address] = Observed(holder: me, lease: lease)
                    return true
                }
                if stillOurs { logger.info("now holding floating IP \(address)", metadata: ["lease": "\(lease)"]) }
            }
        } catch {
            logger.warning("floating IP election failed; retrying",
                           metadata: ["error": "\(error)", "held": "\(held.sorted { $0.value < $1.value })"])
        }
        publishIfChanged()
    }

    /// The lease to hold keys with: granted when there is none, renewed when `renew` is set
    /// (a lease etcd no longer has is replaced, and what it held is given up).
    private func currentLease(now: UInt64, renew: Bool) async throws -> Int64 {
        if let lease = state.withLock({ $0.lease }) {
            guard renew else { return lease }
            if try await store.keepAlive(lease: lease) > 0 {
                state.withLock { state in
                    if state.lease == lease { state.lastRenewal = max(state.lastRenewal, now) }
                }
                return lease
            }
            let lost = state.withLock { state in
                defer { state.held = []; state.lease = nil }
                return state.held
            }
            logger.warning("the floating IP lease is gone; competing again",
                           metadata: ["lease": "\(lease)", "gaveUp": "\(lost.sorted { $0.value < $1.value })"])
            publishIfChanged()
        }
        let lease = try await store.grantLease(ttlSeconds: ttlSeconds)
        state.withLock { state in
            state.lease = lease
            state.lastRenewal = now
        }
        return lease
    }

    /// Gives up every held address once the last successful renewal is older than
    /// ``holdLimit`` (etcd unreachable). Returns true if addresses were given up.
    @discardableResult
    public func expire(now: UInt64) -> Bool {
        let dropped = state.withLock { state -> Set<IPv4Address> in
            guard !state.held.isEmpty, now >= state.lastRenewal &+ holdLimit else { return [] }
            defer { state.held = [] }
            return state.held
        }
        guard !dropped.isEmpty else { return false }
        logger.error("""
            no successful renewal of the floating IP lease for \(holdLimit / 1_000_000) ms; giving up \
            \(dropped.sorted { $0.value < $1.value }.map(\.description).joined(separator: ", ")) before etcd \
            can hand them to another node
            """)
        publishIfChanged()
        return true
    }

    /// Revokes the lease, deleting every key it holds at once (clean stop). Errors are logged:
    /// the keys then go when the lease runs out.
    public func release() async {
        let (lease, held) = state.withLock { state in
            defer { state.lease = nil; state.held = [] }
            return (state.lease, state.held)
        }
        publishIfChanged()
        guard let lease else { return }
        do {
            try await store.revoke(lease: lease)
            if !held.isEmpty { logger.info("released floating IPs \(held.sorted { $0.value < $1.value })") }
        } catch {
            logger.warning("could not release the floating IPs; they go when their lease runs out",
                           metadata: ["lease": "\(lease)", "error": "\(error)"])
        }
    }

    /// Calls the `onChange` of ``run(clock:syncInterval:onChange:)`` when the holders changed.
    /// Calls are serialized and each hands on the newest view, so a slow handler never
    /// applies an older view after a newer one.
    private func publishIfChanged() {
        changes.withLock { handler in
            let fresh = state.withLock { state -> [IPv4Address: IPv4Address]? in
                let view = view(of: state)
                guard view != state.published else { return nil }
                state.published = view
                return view
            }
            guard let fresh, let handler else { return }
            handler(fresh)
        }
    }

    // MARK: Rolling restart

    /// What the process that replaces this one (rolling restart) needs to go on holding this
    /// node's floating IPs under the same lease without a gap: the lease, when it was last
    /// renewed, what is held and the holders seen. Times are CLOCK_MONOTONIC nanoseconds,
    /// which both processes share (``run(clock:syncInterval:onChange:)`` must be given that clock).
    public struct Handover: Codable, Equatable, Sendable {
        /// One floating IP key as seen under the prefix.
        public struct Seen: Codable, Equatable, Sendable {
            public var address: UInt32
            /// The holder's private address and machine ID; nil for a value that is not a holder.
            public var holder: UInt32?
            public var machineID: String?
            public var lease: Int64
        }

        public var lease: Int64?
        public var lastRenewal: UInt64
        public var held: [UInt32]
        public var seen: [Seen]
    }

    /// The state to hand to a successor (the data path is frozen; this process exits next
    /// without releasing, so the lease and its keys stay).
    public func handover() -> Handover {
        state.withLock { state in
            Handover(lease: state.lease, lastRenewal: state.lastRenewal, held: state.held.map(\.value).sorted(),
                     seen: state.observed.map { address, observed in
                         Handover.Seen(address: address.value, holder: observed.holder?.privateIP.value,
                                       machineID: observed.holder?.machineID, lease: observed.lease)
                     })
        }
    }

    /// Continues a predecessor's election, before ``run(clock:syncInterval:onChange:)``: same
    /// lease, same last renewal (so the hold still ends when etcd's deadline requires), the
    /// addresses it held that are still candidates here, and its view of the prefix.
    public func adopt(_ handover: Handover) {
        state.withLock { state in
            state.lease = handover.lease
            state.lastRenewal = handover.lastRenewal
            state.held = Set(handover.held.map(IPv4Address.init).filter(candidates.contains))
            state.observed = [:]
            for seen in handover.seen {
                let holder = seen.holder.flatMap { address in
                    seen.machineID.map { FloatingHolder(privateIP: IPv4Address(address), machineID: $0) }
                }
                state.observed[IPv4Address(seen.address)] = Observed(holder: holder, lease: seen.lease)
            }
        }
    }

    // MARK: Running

    /// Runs the election until cancelled, then leaves the lease for ``release()``:
    /// follows the prefix, contends every half ``renewalInterval`` (renewing when due), contends at once when a
    /// candidate becomes free, and (with candidates) checks ``expire(now:)`` every 100 ms. `onChange` gets
    /// ``holders()`` whenever it changes (from any of these tasks, never concurrently
    /// with itself for the same change).
    public func run(clock: @escaping @Sendable () -> UInt64, syncInterval: Duration,
                    onChange: @escaping @Sendable ([IPv4Address: IPv4Address]) -> Void) async {
        changes.withLock { $0 = onChange }
        let (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let follower = PrefixFollower(store: store, prefix: keyPrefix, logger: logger, name: "floating IP sync")
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await follower.run(syncInterval: syncInterval,
                                   onListing: { [self] (listing: consuming [KeyValue]) in
                                       if observe(listing: listing) { wake.yield() }
                                       publishIfChanged()
                                   },
                                   onEvents: { [self] in if observe(events: $0) { wake.yield() }; publishIfChanged() })
            }
            // A node without candidates only follows the holders: it never contends nor holds
            // an address, so it has no renewal to make and no expiry to watch (and an idle node
            // is not woken every 100 ms for nothing).
            if !candidates.isEmpty {
                group.addTask { [renewalInterval] in
                    while !Task.isCancelled {
                        wake.yield()
                        do { try await Task.sleep(for: .nanoseconds(Int64(renewalInterval / 2))) } catch { return }
                    }
                }
                group.addTask { [self] in
                    for await _ in wakeups {
                        await contend(now: clock())
                    }
                }
                group.addTask { [self] in
                    while !Task.isCancelled {
                        expire(now: clock())
                        do { try await Task.sleep(for: .milliseconds(100)) } catch { return }
                    }
                }
            }
            // Every task runs until cancelled (the stream's iteration ends with the task).
        }
    }
}
