import Foundation
import QuantumCore
import QuantumCrypto
import QuantumNode
import XCTest

@testable import QuantumCommand

/// An observed endpoint for a response whose payload the test does not look at.
private let noObservation = [UInt8](repeating: 0, count: WireFormat.observedEndpointSize)

/// The rolling restart's handover blob, its version check and the reload policy.
final class HandoverTests: XCTestCase {
    /// A real session (from a real handshake) to carry.
    private func snapshot() throws -> Session.Snapshot {
        let alice = StaticKeyPair.generate()
        let bob = StaticKeyPair.generate()
        let (initiation, state) = try Handshaker(localKeys: alice).makeInitiation(
            peerPublicKey: bob.publicKey, senderIndex: 7, timestamp: .now())
        let received = try initiation.withUnsafeBytes { try Handshaker(localKeys: bob).consumeInitiation($0) }
        let (response, _) = try Handshaker(localKeys: bob).makeResponse(to: received, senderIndex: 9, observedEndpoint: noObservation)
        let keys = try response.withUnsafeBytes { try Handshaker(localKeys: alice).consumeResponse($0, state: state).keys }
        return try XCTUnwrap(try Session(keys: keys, workers: 1, now: 0).snapshot(now: 42))
    }

    private func state(links: [PeerLink]) throws -> HandoverState {
        let mapping = Mapping(machineID: String(repeating: "cd", count: 16), privateIP: IPv4Address("10.99.0.2")!,
                              ipv4: IPv4Address("192.0.2.2"), ipv6: nil, port: 1099,
                              publicKey: StaticKeyPair.generate().publicKey)
        return HandoverState(
            fromPID: 1234, frozenAt: 99, deviceName: "quantum0", queueCount: 2, socketCount: 2,
            privateIP: IPv4Address("10.99.0.1")!.value,
            network: try NetworkConfig(network: IPv4Prefix(parsing: "10.99.0.0/16"), staticRange: IPv4Prefix(parsing: "10.99.0.0/23"),
                                       floatingRange: IPv4Prefix(parsing: "10.99.2.0/23"), leaseTimeSeconds: 3600),
            lease: HandedLease(id: 77, key: "/quantum/nodes/10.99.0.1"),
            mappings: [HandedMapping(.init(address: mapping.privateIP, mapping: mapping, createRevision: 5))],
            links: links)
    }

    func testBlobRoundTripCarriesEverythingAndWipesTheKeys() throws {
        let current = try snapshot()
        let previous = try snapshot()
        // Copies: encoding wipes the key bytes' storage, which `current` and `previous` share.
        let (currentKeys, previousKeys) = (current.keyMaterial.map { $0 }, previous.keyMaterial.map { $0 })
        let keys = currentKeys + previousKeys
        let link = PeerLink(privateIP: IPv4Address("10.99.0.2")!.value, endpoint: [1, 2, 3], current: current,
                            previous: previous, next: nil, newestTimestamp: TAI64N.now().bytes,
                            lastDataSent: 1, lastReceived: 2, lastDataReceived: 3)
        var original = try state(links: [link])
        var blob = try HandoverCodec.encode(&original)
        XCTAssertTrue(original.links[0].current!.keyMaterial.allSatisfy { $0 == 0 }, "the sender's copy is wiped")
        XCTAssertTrue(original.links[0].previous!.keyMaterial.allSatisfy { $0 == 0 })
        XCTAssertEqual(Array(blob.suffix(keys.count)), keys, "keys travel after the JSON, not inside it")

        let decoded = try HandoverCodec.decode(&blob)
        XCTAssertTrue(blob.allSatisfy { $0 == 0 }, "the received blob is wiped")
        XCTAssertEqual(decoded.links[0].current?.keyMaterial, currentKeys)
        XCTAssertEqual(decoded.links[0].previous?.keyMaterial, previousKeys)
        XCTAssertNil(decoded.links[0].next)
        var expected = current
        expected.keyMaterial = []
        var got = try XCTUnwrap(decoded.links[0].current)
        got.keyMaterial = []
        XCTAssertEqual(got, expected, "counter, replay window, age and indices carried")
        XCTAssertEqual(decoded.links[0].endpoint, [1, 2, 3])
        XCTAssertEqual(decoded.links[0].lastDataReceived, 3)
        XCTAssertEqual(decoded.lease, HandedLease(id: 77, key: "/quantum/nodes/10.99.0.1"))
        XCTAssertEqual(decoded.mappings, original.mappings)
        XCTAssertEqual(decoded.deviceName, "quantum0")
        XCTAssertEqual(decoded.frozenAt, 99)
    }

    func testAnotherFormatVersionIsRefusedByName() throws {
        var original = try state(links: [])
        var blob = try HandoverCodec.encode(&original)
        blob[3] = 2
        XCTAssertThrowsError(try HandoverCodec.decode(&blob)) { error in
            XCTAssertEqual("\(error)", "the handover state has format version 2; this binary reads version 1")
        }
    }

    func testDamagedBlobsAreRefused() throws {
        var original = try state(links: [PeerLink(privateIP: 1, endpoint: nil, current: try snapshot(), previous: nil, next: nil,
                                                  newestTimestamp: nil, lastDataSent: 0, lastReceived: 0, lastDataReceived: 0)])
        let blob = try HandoverCodec.encode(&original)
        var missingKey = Array(blob.dropLast())
        XCTAssertThrowsError(try HandoverCodec.decode(&missingKey)) { XCTAssertTrue("\($0)".contains("63 key bytes for 1 sessions"), "\($0)") }
        var short: [UInt8] = [0, 0, 0]
        XCTAssertThrowsError(try HandoverCodec.decode(&short))
        var badJSON = blob
        badJSON[8] = UInt8(ascii: "x")
        XCTAssertThrowsError(try HandoverCodec.decode(&badJSON)) { XCTAssertTrue("\($0)".contains("does not decode"), "\($0)") }
    }

    /// A refusal names options by these keys (`--<key>`), so each must be a real option's name:
    /// a renamed option would otherwise leave a refusal naming an option that does not exist.
    func testEveryOptionFixedAcrossReloadsIsAnOptionOfTheTable() throws {
        let names = Set(OptionTable.all.map(\.name))
        let fixed = try resolve(cli: [:]).fixedForReload
        XCTAssertFalse(fixed.isEmpty)
        XCTAssertEqual(Set(fixed.keys).subtracting(names), [], "fixed settings that name no option")
    }

    func testReloadRefusesFixedOptionsNamingBothValuesAndAcceptsTheOthers() throws {
        let running = try resolve(cli: ["mtu": "1420", "log-level": "info", "datastore-sync-interval": "30s"])
        let softer = try resolve(cli: ["mtu": "1420", "log-level": "debug", "datastore-sync-interval": "10s"])
        XCTAssertNil(Configuration.reloadRefusal(running: running.fixedForReload, new: softer.fixedForReload),
                     "log level and sync interval take effect on reload")

        let other = try resolve(cli: ["mtu": "1400", "listen-port": "2000", "log-level": "debug"])
        let refusal = try XCTUnwrap(Configuration.reloadRefusal(running: running.fixedForReload, new: other.fixedForReload))
        XCTAssertEqual(refusal, "--listen-port 1099 → 2000, --mtu 1420 → 1400 cannot change on reload; restart the service for that")
    }
}
