/// Joins consecutive TCP segments of one flow, as they come out of the tunnel, into one
/// super-packet for a TUN queue with `IFF_VNET_HDR` — the receive-side counterpart of
/// `TCPSegmentation` (what GRO does for a network card).
///
/// A segment joins the segment(s) held for its flow when both are plain IPv4 (no options,
/// not fragmented) with the same addresses, ports, TOS, TTL and don't-fragment bit, the
/// same TCP header apart from sequence number, flags and checksum (so the same ACK,
/// window and options), only ACK or ACK|PSH set, the next sequence number, and a payload
/// no larger than the first one's; a push or a shorter payload ends the super-packet, and
/// so does the 64 KB IP limit. Each segment's IP and TCP checksums are verified before it
/// joins: a corrupt segment reaches the kernel alone and unchanged, as it arrived, for the
/// kernel to judge. Anything else is written alone with an empty virtio-net header, after
/// what is held for its flow (so a flow's order never changes).
///
/// A super-packet is written with `GSO_TCPV4`, `segmentSize` the first payload's size and
/// a partial checksum (`needsChecksum`, the pseudo-header sum in the checksum field).
///
/// Owned by one thread; allocates its flow buffers once (pages are touched only when a
/// flow uses them) and nothing per packet.
public final class TCPCoalescer {
    /// The largest IPv4 packet a super-packet may become.
    public static let maximumLength = 65_535
    /// Bytes each flow buffer holds: the virtio-net header and the largest packet.
    static let bufferSize = (VirtioNetHeader.size + maximumLength + 63) & ~63

    /// Writes a packet to the device: its virtio-net header (`VirtioNetHeader.size` bytes),
    /// the packet, and how many received segments it carries.
    public typealias Write = (_ header: UnsafeRawPointer, _ packet: UnsafeRawBufferPointer, _ segments: Int) -> Void

    /// What is held for one flow. The packet itself sits in the flow's buffer after the header room.
    struct Flow {
        var held = false
        var source: UInt32 = 0
        var destination: UInt32 = 0
        var ports: UInt32 = 0
        /// IP packet bytes held (headers of the first segment and every payload).
        var length = 0
        var headerLength = 0
        var segmentSize = 0
        var segments = 0
        var nextSequence: UInt32 = 0
        /// A push or a short segment arrived: the next segment starts a new super-packet.
        var closed = false
        var pushed = false
    }

    /// Flows held at once; a new flow beyond them writes out the longest-held one.
    public let flowCapacity: Int
    private let memory: UnsafeMutableRawPointer
    private let flows: UnsafeMutablePointer<Flow>
    private let emptyHeader: UnsafeMutableRawPointer
    private var nextEviction = 0

    public init(flowCapacity: Int = 8) {
        precondition(flowCapacity >= 1)
        self.flowCapacity = flowCapacity
        memory = .allocate(byteCount: flowCapacity * TCPCoalescer.bufferSize, alignment: 64)
        flows = .allocate(capacity: flowCapacity)
        flows.initialize(repeating: Flow(), count: flowCapacity)
        emptyHeader = .allocate(byteCount: VirtioNetHeader.size, alignment: 8)
        emptyHeader.initializeMemory(as: UInt8.self, repeating: 0, count: VirtioNetHeader.size)
    }

    deinit {
        memory.deallocate()
        flows.deinitialize(count: flowCapacity)
        flows.deallocate()
        emptyHeader.deallocate()
    }

    /// Takes one packet: holds it with (or as the start of) its flow's super-packet, or
    /// writes it — after whatever its flow held — through `write`. The packet is copied;
    /// its memory may be reused as soon as this returns.
    public func add(_ packet: UnsafeRawBufferPointer, write: Write) {
        guard let payload = TCPCoalescer.joinablePayload(packet) else {
            if let index = heldFlow(of: packet) { writeOut(index, write: write) }
            write(emptyHeader, packet, 1)
            return
        }
        let bytes = packet.baseAddress!
        let source = bytes.bigEndian32(at: 12), destination = bytes.bigEndian32(at: 16), ports = bytes.bigEndian32(at: 20)
        var free = -1
        for index in 0..<flowCapacity {
            let flow = flows[index]
            if !flow.held {
                if free < 0 { free = index }
                continue
            }
            guard flow.source == source && flow.destination == destination && flow.ports == ports else { continue }
            if joins(packet, payload: payload, flow: index) {
                append(packet, payload: payload, to: index)
            } else {
                writeOut(index, write: write)
                start(index, with: packet, payload: payload)
            }
            return
        }
        if free < 0 {
            free = nextEviction
            nextEviction = (nextEviction + 1) % flowCapacity
            writeOut(free, write: write)
        }
        start(free, with: packet, payload: payload)
    }

    /// Writes out everything held (at the end of a batch).
    public func flush(write: Write) {
        for index in 0..<flowCapacity where flows[index].held {
            writeOut(index, write: write)
        }
    }

    // MARK: - Flows

    @inline(__always)
    private func buffer(_ index: Int) -> UnsafeMutableRawPointer {
        memory + index * TCPCoalescer.bufferSize
    }

    private func start(_ index: Int, with packet: UnsafeRawBufferPointer, payload: Int) {
        let bytes = packet.baseAddress!
        buffer(index).advanced(by: VirtioNetHeader.size).copyMemory(from: bytes, byteCount: packet.count)
        let push = bytes.load(fromByteOffset: 33, as: UInt8.self) & TCPFlags.psh != 0
        flows[index] = Flow(held: true, source: bytes.bigEndian32(at: 12), destination: bytes.bigEndian32(at: 16),
                            ports: bytes.bigEndian32(at: 20), length: packet.count, headerLength: packet.count - payload,
                            segmentSize: payload, segments: 1,
                            nextSequence: bytes.bigEndian32(at: 24) &+ UInt32(payload), closed: push, pushed: push)
    }

    /// Whether `packet` (of the flow's addresses and ports) continues what `index` holds.
    private func joins(_ packet: UnsafeRawBufferPointer, payload: Int, flow index: Int) -> Bool {
        let flow = flows[index]
        guard !flow.closed, packet.count - payload == flow.headerLength, payload <= flow.segmentSize,
              flow.length + payload <= TCPCoalescer.maximumLength else { return false }
        let bytes = packet.baseAddress!, held = UnsafeRawPointer(buffer(index) + VirtioNetHeader.size)
        guard bytes.bigEndian32(at: 24) == flow.nextSequence,
              // TOS; flags and fragment offset; TTL.
              bytes.load(fromByteOffset: 1, as: UInt8.self) == held.load(fromByteOffset: 1, as: UInt8.self),
              bytes.bigEndian16(at: 6) == held.bigEndian16(at: 6),
              bytes.load(fromByteOffset: 8, as: UInt8.self) == held.load(fromByteOffset: 8, as: UInt8.self),
              // ACK number, header length, window, urgent pointer.
              bytes.bigEndian32(at: 28) == held.bigEndian32(at: 28),
              bytes.load(fromByteOffset: 32, as: UInt8.self) == held.load(fromByteOffset: 32, as: UInt8.self),
              bytes.bigEndian16(at: 34) == held.bigEndian16(at: 34),
              bytes.bigEndian16(at: 38) == held.bigEndian16(at: 38) else { return false }
        // TCP options, in whole 32-bit words (the header length is a multiple of 4).
        var offset = 40
        while offset < flow.headerLength {
            guard bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
                    == held.loadUnaligned(fromByteOffset: offset, as: UInt32.self) else { return false }
            offset += 4
        }
        return true
    }

    private func append(_ packet: UnsafeRawBufferPointer, payload: Int, to index: Int) {
        let bytes = packet.baseAddress!
        (buffer(index) + VirtioNetHeader.size + flows[index].length)
            .copyMemory(from: bytes + (packet.count - payload), byteCount: payload)
        let push = bytes.load(fromByteOffset: 33, as: UInt8.self) & TCPFlags.psh != 0
        flows[index].length += payload
        flows[index].segments += 1
        flows[index].nextSequence &+= UInt32(payload)
        flows[index].pushed = push
        flows[index].closed = push || payload < flows[index].segmentSize
    }

    /// Writes what flow `index` holds and frees it: a lone segment as it arrived, several as
    /// one super-packet.
    private func writeOut(_ index: Int, write: Write) {
        let flow = flows[index]
        flows[index].held = false
        let header = buffer(index), packet = header + VirtioNetHeader.size
        guard flow.segments > 1 else {
            write(emptyHeader, UnsafeRawBufferPointer(start: packet, count: flow.length), 1)
            return
        }
        packet.storeBigEndian(UInt16(flow.length), at: 2)
        packet.storeBigEndian(UInt16(0), at: 10)
        packet.storeBigEndian(~InternetChecksum.sum(packet, count: 20), at: 10)
        if flow.pushed {
            packet.storeBytes(of: packet.load(fromByteOffset: 33, as: UInt8.self) | TCPFlags.psh, toByteOffset: 33, as: UInt8.self)
        }
        let pseudo = InternetChecksum.pseudoHeaderSum(source: flow.source, destination: flow.destination, protocol: 6,
                                                      length: flow.length - 20)
        packet.storeBigEndian(pseudo, at: 36)
        VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.GSO.tcpv4,
                        headerLength: UInt16(flow.headerLength), segmentSize: UInt16(flow.segmentSize),
                        checksumStart: 20, checksumOffset: 16).write(to: header)
        write(header, UnsafeRawBufferPointer(start: packet, count: flow.length), flow.segments)
    }

    /// The flow held for a TCP/IPv4 packet that cannot join it, so that it is written first.
    private func heldFlow(of packet: UnsafeRawBufferPointer) -> Int? {
        guard packet.count >= 20, packet[0] >> 4 == 4, packet[9] == 6 else { return nil }
        let ipLength = Int(packet[0] & 0x0F) * 4
        guard ipLength >= 20, packet.count >= ipLength + 4 else { return nil }
        let bytes = packet.baseAddress!
        let source = bytes.bigEndian32(at: 12), destination = bytes.bigEndian32(at: 16)
        let ports = bytes.bigEndian32(at: ipLength)
        for index in 0..<flowCapacity where flows[index].held {
            if flows[index].source == source && flows[index].destination == destination && flows[index].ports == ports {
                return index
            }
        }
        return nil
    }

    /// The TCP payload length of a packet that may join a super-packet: IPv4 without options
    /// or fragmentation, exactly as long as its header says, TCP with only ACK or ACK|PSH and
    /// a payload, both checksums correct. Nil for anything else.
    @inlinable
    static func joinablePayload(_ packet: UnsafeRawBufferPointer) -> Int? {
        guard packet.count >= 40, packet[0] == 0x45, packet[9] == 6 else { return nil }
        let bytes = packet.baseAddress!
        guard Int(bytes.bigEndian16(at: 2)) == packet.count, bytes.bigEndian16(at: 6) & 0x3FFF == 0 else { return nil }
        let tcpLength = Int(packet[32] >> 4) * 4
        let flags = packet[33]
        guard tcpLength >= 20, 20 + tcpLength < packet.count,
              flags & TCPFlags.ack != 0, flags & ~(TCPFlags.ack | TCPFlags.psh) == 0,
              InternetChecksum.sum(bytes, count: 20) == 0xFFFF else { return nil }
        let pseudo = InternetChecksum.pseudoHeaderSum(source: bytes.bigEndian32(at: 12), destination: bytes.bigEndian32(at: 16),
                                                      protocol: 6, length: packet.count - 20)
        guard InternetChecksum.sum(bytes + 20, count: packet.count - 20, adding: pseudo) == 0xFFFF else { return nil }
        return packet.count - 20 - tcpLength
    }
}
