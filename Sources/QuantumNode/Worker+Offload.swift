import QuantumCore
import QuantumCrypto
import QuantumDevice

// The outgoing half of the offloaded data path: a TUN read may return a super-packet of up
// to 64 KB; its segments are written straight into outgoing slots at the offset sealing
// expects and sealed in place. With UDP GSO the sealed segments of one super-packet are laid
// end to end in one slot — a train of equal-sized datagrams (the last may be shorter) that the
// kernel sends as one message; a route whose datagrams change size (compression) or gain an
// envelope (relay) gets one slot per segment instead.
extension Worker {
    /// `forwardFromTun` for a queue with a virtio-net header: each read lands in `buffer`
    /// and is cut (or copied) into outgoing slots, which are sent whenever they are all used.
    /// Returns packets read.
    func forwardSuperPackets(now: UInt64, readingInto buffer: UnsafeMutableRawPointer) -> Int {
        var ready = 0, datagrams = 0, read = 0
        while read < Worker.batchSize {
            let length = tun.read(into: buffer, capacity: Worker.superPacketCapacity)
            guard length > 0 else {
                if length < 0 { tunReadFailed(errno: Int32(-length), now: now) }
                break
            }
            tunFailingSince = 0
            read += 1
            guard length > VirtioNetHeader.size else {
                path.dropOutgoing(.dropOffloadMalformed, bytes: length)
                continue
            }
            let packet = UnsafeMutableRawBufferPointer(start: buffer + VirtioNetHeader.size, count: length - VirtioNetHeader.size)
            let plan: TCPSegmentation.Plan
            switch TCPSegmentation.plan(VirtioNetHeader(from: buffer), packet: packet, maximumPacket: maximumPacket) {
            case .success(let planned): plan = planned
            case .failure:
                path.dropOutgoing(.dropOffloadMalformed, bytes: packet.count)
                continue
            }
            if plan.count > 1 { counters.add(.tunSuperPacketsSplit) }
            var index = 0
            while index < plan.count {
                if ready == outgoing.capacity {
                    sendOutgoing(ready, datagrams: datagrams)
                    (ready, datagrams) = (0, 0)
                }
                let sealed = plan.count - index > 1 && sendsAsTrain(UnsafeRawBufferPointer(packet))
                    ? sealTrain(plan, from: UnsafeRawBufferPointer(packet), startingAt: &index, slot: ready, now: now)
                    : sealSegment(plan, from: UnsafeRawBufferPointer(packet), index: &index, slot: ready, now: now)
                if sealed > 0 {
                    ready += 1
                    datagrams += sealed
                }
            }
        }
        sendOutgoing(ready, datagrams: datagrams)
        return read
    }

    /// Whether the segments of `packet` may travel as a GSO train: the socket sends trains,
    /// and the route seals every segment to the same size at the same place (a direct peer
    /// with a session, without compression).
    private func sendsAsTrain(_ packet: UnsafeRawBufferPointer) -> Bool {
        guard segmentationOffload, let destination = IPPacket.ipv4Destination(packet),
              let route = table.route(to: destination) else { return false }
        return route.session != nil && route.endpoint != nil && route.relayEndpoint == nil && !route.compression
    }

    /// Writes and seals segment `index` into outgoing slot `slot` and prepares the slot;
    /// advances `index`. Returns the datagrams the slot holds (0: dropped or staged).
    private func sealSegment(_ plan: TCPSegmentation.Plan, from packet: UnsafeRawBufferPointer, index: inout Int,
                             slot: Int, now: UInt64) -> Int {
        let start = outgoing.buffer(slot) + WireFormat.relayHeaderSize
        let length = TCPSegmentation.writeSegment(index, of: plan, from: packet, into: start + WireFormat.transportHeaderSize)
        index += 1
        guard let (datagram, total, endpoint) = path.seal(start, length: length, table: table, now: now) else { return 0 }
        outgoing.prepare(slot, offset: datagram - outgoing.buffer(slot), length: total, to: endpoint)
        return 1
    }

    /// Writes and seals segments from `index` on end to end into slot `slot` — as many as one
    /// GSO message may carry — and prepares the slot; advances `index` past them.
    /// Returns the datagrams the slot holds (0: all dropped or staged).
    private func sealTrain(_ plan: TCPSegmentation.Plan, from packet: UnsafeRawBufferPointer, startingAt index: inout Int,
                           slot: Int, now: UInt64) -> Int {
        let base = outgoing.buffer(slot) + WireFormat.relayHeaderSize
        let stride = plan.headerLength + plan.segmentSize + WireFormat.transportOverhead
        let limit = min(UDPSocket.maximumSegments, UDPSocket.maximumSegmentedLength / stride)
        var count = 0, length = 0
        var destination: UDPEndpoint?
        while index < plan.count && count < limit {
            let start = base + count * stride
            let segment = TCPSegmentation.writeSegment(index, of: plan, from: packet, into: start + WireFormat.transportHeaderSize)
            index += 1
            // A segment staged for a handshake or dropped (counted) leaves no gap: the next
            // one takes its place.
            guard let (datagram, total, endpoint) = path.seal(start, length: segment, table: table, now: now) else { continue }
            guard datagram == start, total == segment + WireFormat.transportOverhead,
                  destination == nil || destination == endpoint else {
                // Not expected (sendsAsTrain checked the route): never send a train of mixed sizes.
                path.dropOutgoing(.dropSendFailed, bytes: segment)
                continue
            }
            destination = endpoint
            count += 1
            length = (count - 1) * stride + total
        }
        guard let destination, count > 0 else { return 0 }
        outgoing.prepare(slot, offset: WireFormat.relayHeaderSize, length: length, to: destination,
                         segmentSize: count > 1 ? stride : 0)
        return count
    }
}
