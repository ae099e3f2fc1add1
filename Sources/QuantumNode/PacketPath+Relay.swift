import QuantumCore
import QuantumCrypto
import QuantumDevice

// Relay envelopes on the data path (`--relay`; layout at the top of WireFormat.swift).
// A relay forwards an envelope without opening it (it has no session for the inner
// message); the destination unwraps it and opens the inner message end to end. Both
// run per packet in the worker: no allocation, no lock, no logging (relayed handshake
// messages are copied to the control thread, as direct ones are).
extension PacketPath {
    /// For a relay envelope this node forwards: the endpoint to send it to, unchanged.
    /// Nil when `datagram` is not an envelope, is addressed to this node (`open` takes it)
    /// or is refused (`open` then counts it as refused): a relay forwards only when it
    /// offers itself as relay (`--relay`), only from the current endpoint of the claimed
    /// source with which it has a session (no open reflector, no spoofed source), only to
    /// another node of its map that it reaches directly, and never to itself.
    @inline(__always)
    func relayTarget(_ datagram: UnsafeRawBufferPointer, from sender: UDPEndpoint, table: ForwardingTable) -> UDPEndpoint? {
        guard table.offersRelay, let destination = RelayEnvelope.destination(datagram), destination != localIP,
              let origin = RelayEnvelope.source(datagram), origin != destination,
              let from = table.routes[origin], from.privateIP == origin, from.session != nil,
              from.relayEndpoint == nil, from.endpoint == sender,
              let to = table.routes[destination], to.privateIP == destination, to.relayEndpoint == nil,
              let endpoint = to.endpoint, endpoint != sender else { return nil }
        counters.add(.relayForwarded)
        return endpoint
    }

    /// Handles an envelope `relayTarget` did not forward: one addressed to this node is
    /// unwrapped and its inner message handled as if received directly, but marked as
    /// relayed through `source`; any other is refused and counted.
    @inline(__always)
    func openEnvelope(_ message: UnsafeMutableRawBufferPointer, from source: UDPEndpoint, table: ForwardingTable,
                      now: UInt64) -> UnsafeRawBufferPointer? {
        let datagram = UnsafeRawBufferPointer(message)
        guard RelayEnvelope.destination(datagram) == localIP, let origin = RelayEnvelope.source(datagram) else {
            dropIncoming(.relayRefused, bytes: message.count)
            return nil
        }
        let inner = UnsafeMutableRawBufferPointer(rebasing: message[WireFormat.relayHeaderSize...])
        switch inner[0] {
        case MessageType.transport.rawValue:
            return openTransport(inner, from: source, relayedFor: origin, table: table, now: now)
        case MessageType.initiation.rawValue, MessageType.response.rawValue:
            passHandshake(UnsafeRawBufferPointer(inner), from: source, relayedFor: origin, now: now)
        default:
            dropIncoming(.dropMalformed, bytes: message.count)
        }
        return nil
    }

    /// Tells the control thread when an authenticated packet of `inbound`'s peer came by
    /// another path than the table sends on: straight (`relay` nil) while relayed, or
    /// through a relay (its endpoint) other than the one in use.
    @inline(__always)
    func notePath(of inbound: ForwardingTable.Inbound, arrivedVia relay: UDPEndpoint?) {
        guard inbound.relayEndpoint != relay, PeerSignals.raise(inbound.signals.pathPending) else { return }
        control.post(.pathChanged(inbound.session.localIndex, via: relay, inbound.signals))
    }
}
