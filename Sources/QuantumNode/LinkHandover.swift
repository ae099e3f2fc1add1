import Glibc
import QuantumCore
import QuantumCrypto
import QuantumDatastore
import QuantumDevice

/// One peer's live link, as a running node hands it to the process that replaces it
/// (rolling restart): where the peer is, its sessions and the timer marks they depend on.
///
/// Key bytes live only in the sessions' `keyMaterial`, which `Codable` leaves out (see
/// `Session.Snapshot`). Pending initiations and packets staged for a handshake are not
/// carried: the new process starts such handshakes again when traffic asks for them.
public struct PeerLink: Codable, Sendable {
    /// The peer's private address (`IPv4Address.value`).
    public var privateIP: UInt32
    /// The bytes of the peer's current `sockaddr_in`/`sockaddr_in6`, if it has an endpoint
    /// (it may have roamed away from its mapping's).
    public var endpoint: [UInt8]?
    /// The session sent with, the one before it, and a responder session not yet confirmed.
    public var current: Session.Snapshot?
    public var previous: Session.Snapshot?
    public var next: Session.Snapshot?
    /// The newest initiation timestamp accepted from the peer (TAI64N bytes).
    public var newestTimestamp: [UInt8]?
    /// Monotonic marks of the last data sent, last packet received and last data received
    /// (CLOCK_MONOTONIC is the same in both processes).
    public var lastDataSent: UInt64
    public var lastReceived: UInt64
    public var lastDataReceived: UInt64

    public init(privateIP: UInt32, endpoint: [UInt8]?, current: Session.Snapshot?, previous: Session.Snapshot?,
                next: Session.Snapshot?, newestTimestamp: [UInt8]?, lastDataSent: UInt64, lastReceived: UInt64,
                lastDataReceived: UInt64) {
        self.privateIP = privateIP
        self.endpoint = endpoint
        self.current = current
        self.previous = previous
        self.next = next
        self.newestTimestamp = newestTimestamp
        self.lastDataSent = lastDataSent
        self.lastReceived = lastReceived
        self.lastDataReceived = lastDataReceived
    }

    /// The number of sessions the link carries.
    public var sessionCount: Int { [current, previous, next].count { $0 != nil } }


    /// Overwrites every key byte this link holds (call on the owner of the array).
    public mutating func wipeKeys() {
        if current != nil { Session.wipe(&current!.keyMaterial) }
        if previous != nil { Session.wipe(&previous!.keyMaterial) }
        if next != nil { Session.wipe(&next!.keyMaterial) }
    }
}

extension UDPEndpoint {
    /// The raw socket address, as carried in a `PeerLink`.
    var handoverBytes: [UInt8] {
        withUnsafeBytes(of: storage) { Array($0.prefix(Int(length))) }
    }

    /// An endpoint from `handoverBytes`; nil unless they are a whole IPv4 or IPv6 socket address.
    init?(handoverBytes bytes: [UInt8]) {
        var storage = sockaddr_in6()
        let family: Int32
        switch bytes.count {
        case MemoryLayout<sockaddr_in>.size: family = AF_INET
        case MemoryLayout<sockaddr_in6>.size: family = AF_INET6
        default: return nil
        }
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
        guard Int32(storage.sin6_family) == family else { return nil }
        self.init(storage: storage, length: socklen_t(bytes.count))
    }
}

// The control plane's side of a handover. Both run while the control thread is not
// running (the node is paused, or not started yet).
extension ControlPlane {
    /// Every peer's link at `now`, for the process that replaces this one.
    func links(now: UInt64) -> [PeerLink] {
        peers.map { address, peer in
            PeerLink(privateIP: address.value, endpoint: peer.endpoint?.handoverBytes,
                     current: peer.current?.snapshot(now: now), previous: peer.previous?.snapshot(now: now),
                     next: peer.next?.snapshot(now: now), newestTimestamp: peer.newestTimestamp?.bytes,
                     lastDataSent: peer.signals.lastDataSent.load(ordering: .relaxed),
                     lastReceived: peer.signals.lastReceived.load(ordering: .relaxed),
                     lastDataReceived: peer.signals.lastDataReceived.load(ordering: .relaxed))
        }
    }

    /// Applies the handed-over peer map and floating IP holders, then installs each link's
    /// sessions on its peer and publishes the table. Wipes every link's key bytes. Returns the number of sessions
    /// installed and a line for each link that could not be (no mapping owns that address,
    /// or its state is damaged).
    func restore(mappings: [MappingUpdate], links: inout [PeerLink], floatingHolders: [IPv4Address: IPv4Address],
                 now: UInt64) -> (sessions: Int, problems: [String]) {
        for update in mappings { _ = applyMapping(update, now: now) }
        self.floatingHolders = floatingHolders
        var installed = 0
        var problems: [String] = []
        for index in links.indices {
            defer { links[index].wipeKeys() }
            let link = links[index]
            let address = IPv4Address(link.privateIP)
            guard let peer = peers[address] else {
                problems.append("peer \(address): no mapping owns this address here; its \(link.sessionCount) session(s) dropped")
                continue
            }
            do throws(CryptoError) {
                let make = { (snapshot: Session.Snapshot?) throws(CryptoError) -> Session? in
                    guard let snapshot else { return nil }
                    return try Session(restoring: snapshot, workers: self.workerCount + 1, now: now)
                }
                let (current, previous, next) = (try make(link.current), try make(link.previous), try make(link.next))
                if let bytes = link.endpoint {
                    guard let endpoint = UDPEndpoint(handoverBytes: bytes) else {
                        problems.append("peer \(address): its endpoint is not a socket address; sessions dropped")
                        continue
                    }
                    peer.endpoint = endpoint
                }
                peer.current = current
                peer.previous = previous
                peer.next = next
                for session in peer.sessions { owners[session.localIndex] = address }
                peer.newestTimestamp = link.newestTimestamp.flatMap { TAI64N(bytes: $0) }
                peer.signals.lastDataSent.store(link.lastDataSent, ordering: .relaxed)
                peer.signals.lastReceived.store(link.lastReceived, ordering: .relaxed)
                peer.signals.lastDataReceived.store(link.lastDataReceived, ordering: .relaxed)
                installed += peer.sessions.count
            } catch {
                problems.append("peer \(address): \(error); sessions dropped")
            }
        }
        publish()
        return (installed, problems)
    }
}
