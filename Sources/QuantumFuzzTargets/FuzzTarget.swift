/// A parser of untrusted bytes set up for fuzzing: built once per process, then fed one
/// input at a time. `run` must return for every input; a trap (or a sanitizer report) is
/// a bug in the code under test, never in the input.
public protocol FuzzHarness {
    /// Real inputs produced by quantum's own code (messages it sends, JSON it stores):
    /// the seed corpus committed under `Fuzz/corpus/<target>/`.
    func seeds() -> [[UInt8]]
    /// Feeds one input to the parser.
    func run(_ input: UnsafeRawBufferPointer)
}

/// A named fuzz target, as `scripts/fuzz.sh` and `quantum-fuzz` select it.
public struct FuzzTarget: Sendable {
    /// The name used on the command line and as the corpus directory.
    public let name: String
    /// What the target feeds its input to.
    public let summary: String
    /// Builds the harness (keys, sessions, tables it needs).
    public let make: @Sendable () -> any FuzzHarness
}

/// Every fuzz target. Adding one: write a `FuzzHarness`, add a line here, then
/// `quantum-fuzz --write-seeds Fuzz/corpus` (or `scripts/fuzz.sh --seeds`) and commit its corpus.
public enum FuzzTargets {
    public static let all: [FuzzTarget] = [
        FuzzTarget(name: "initiation", summary: "handshake initiation: frame, mac1, Noise IK message 1, response",
                   make: { InitiationHarness() }),
        FuzzTarget(name: "response", summary: "handshake response against a pending initiation",
                   make: { ResponseHarness() }),
        FuzzTarget(name: "transport", summary: "transport messages through one session: header, replay window, AES-GCM open",
                   make: { TransportHarness() }),
        FuzzTarget(name: "datapath", summary: "a worker's receive path: type dispatch, handshake screen, open, LZ4, inner IPv4 checks",
                   make: { DataPathHarness() }),
        FuzzTarget(name: "inner-ip", summary: "inner IP header parsing and the forwarding table's route and accept decisions",
                   make: { InnerIPHarness() }),
        FuzzTarget(name: "mapping", summary: "a node mapping's JSON (etcd value)", make: { MappingHarness() }),
        FuzzTarget(name: "network-config", summary: "the network configuration's JSON (etcd value)",
                   make: { NetworkConfigHarness() }),
        FuzzTarget(name: "etcd-range", summary: "an etcd JSON gateway range response", make: { EtcdRangeHarness() }),
        FuzzTarget(name: "etcd-watch", summary: "an etcd JSON gateway watch stream (newline-delimited messages)",
                   make: { EtcdWatchHarness() }),
        FuzzTarget(name: "handover", summary: "a rolling restart's handover blob, restored into a control plane",
                   make: { HandoverHarness() }),
        FuzzTarget(name: "cookie-reply", summary: "a cookie reply: receiver index, then the cookie opened against our mac1",
                   make: { CookieReplyHarness() }),
        FuzzTarget(name: "certificate", summary: "a node or CA certificate: decode, then verify for a key and address",
                   make: { CertificateHarness() }),
        FuzzTarget(name: "revocation-list", summary: "the CA's revocation list: decode, verify, adopt over an older one",
                   make: { RevocationListHarness() }),
    ]

    /// The target called `name`, if there is one.
    public static func named(_ name: String) -> FuzzTarget? {
        all.first { $0.name == name }
    }
}

/// Reads an input front to back; past its end every read yields zeros or nothing, so a
/// harness can split any input into fields without checking lengths.
struct FuzzInput {
    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Whether every byte was read.
    var isAtEnd: Bool { offset >= bytes.count }

    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uint64() -> UInt64 {
        (0..<8).reduce(UInt64(0)) { value, _ in value << 8 | UInt64(byte()) }
    }

    /// The next `count` bytes, fewer at the end of the input.
    mutating func take(_ count: Int) -> UnsafeRawBufferPointer {
        let end = min(bytes.count, offset + max(0, count))
        defer { offset = end }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
    }

    /// Everything not read yet.
    mutating func rest() -> UnsafeRawBufferPointer {
        take(bytes.count - offset)
    }
}
