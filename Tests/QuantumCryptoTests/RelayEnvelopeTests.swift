import QuantumCore
import XCTest

@testable import QuantumCrypto

/// The relay envelope's header (type 5): written and read back, and refused when short or of another type.
final class RelayEnvelopeTests: XCTestCase {
    private let destination = IPv4Address("10.99.0.2")!
    private let source = IPv4Address("10.99.0.1")!

    func testHeaderRoundTripAndLayout() {
        let inner = [UInt8](repeating: 0xAB, count: WireFormat.minimumTransportSize)
        let envelope = RelayEnvelope.wrap(inner, destination: destination, source: source)
        XCTAssertEqual(envelope.count, WireFormat.relayHeaderSize + inner.count)
        XCTAssertEqual(Array(envelope[0..<WireFormat.relayHeaderSize]), [5, 0, 0, 0, 10, 99, 0, 2, 10, 99, 0, 1],
                       "type, reserved zeros, then both addresses in network byte order")
        XCTAssertEqual(Array(envelope[WireFormat.relayHeaderSize...]), inner, "the inner message is carried unchanged")
        envelope.withUnsafeBytes {
            XCTAssertEqual(RelayEnvelope.destination($0), destination)
            XCTAssertEqual(RelayEnvelope.source($0), source)
        }
    }

    func testShortOrForeignDatagramsAreNoEnvelopes() {
        let envelope = RelayEnvelope.wrap([UInt8](repeating: 0, count: WireFormat.minimumTransportSize),
                                          destination: destination, source: source)
        Array(envelope.dropLast()).withUnsafeBytes {
            XCTAssertNil(RelayEnvelope.destination($0))
            XCTAssertNil(RelayEnvelope.source($0))
        }
        var transport = envelope
        transport[0] = MessageType.transport.rawValue
        transport.withUnsafeBytes { XCTAssertNil(RelayEnvelope.destination($0)) }
    }
}
