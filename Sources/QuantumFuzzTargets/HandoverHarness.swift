import Foundation
import QuantumCore
@testable import QuantumCommand
import QuantumCrypto
@testable import QuantumNode

/// The blob a rolling restart's successor reads from its predecessor: decoded, then its
/// peer map and sessions restored into a control plane as `Takeover.confirmRunning` does.
struct HandoverHarness: FuzzHarness {
    func seeds() -> [[UInt8]] {
        let session = TransportHarness.receivingSession()
        let link = PeerLink(privateIP: FuzzNode.peerIP.value, endpoint: FuzzNode.endpoint.handoverBytes,
                            current: session.snapshot(now: 5), previous: nil, next: session.snapshot(now: 5),
                            newestTimestamp: FuzzKeys.timestamp.bytes, lastDataSent: 1, lastReceived: 2, lastDataReceived: 3)
        let stranger = PeerLink(privateIP: IPv4Address("10.99.9.9")!.value, endpoint: nil, current: nil, previous: nil,
                                next: nil, newestTimestamp: nil, lastDataSent: 0, lastReceived: 0, lastDataReceived: 0)
        let mapping = FuzzMappings.mapping(FuzzNode.peerIP)
        var state = HandoverState(
            fromPID: 1234, frozenAt: 99, deviceName: "quantum0", queueCount: 1, socketCount: 1,
            privateIP: FuzzNode.localIP.value, network: FuzzMappings.config,
            lease: HandedLease(id: 77, key: "/quantum/nodes/10.99.0.1"),
            mappings: [HandedMapping(.init(address: mapping.privateIP, mapping: mapping, createRevision: 5))],
            links: [link, stranger])
        return [try! HandoverCodec.encode(&state)]
    }

    func run(_ input: UnsafeRawBufferPointer) {
        var blob = Array(input)
        guard var state = try? HandoverCodec.decode(&blob) else { return }
        let control = FuzzNode.controlPlane()
        _ = control.restore(mappings: state.mappings.map(\.update), links: &state.links, floatingHolders: [:], now: 1)
    }
}
