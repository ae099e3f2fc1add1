import Foundation
import Glibc
import XCTest
import QuantumCore
@testable import QuantumDevice

/// One received slot: its bytes and the segment size the kernel reported (0: one datagram).
struct ReceivedSlot: Equatable {
    var bytes: [UInt8]
    var segmentSize: Int
}

// UDP GSO (UDP_SEGMENT) and GRO (UDP_GRO) through UDPSocket and DatagramBatch, on loopback.
extension UDPSocketTests {
    /// `count` bytes numbered from `seed`, so the segments of a test's payloads all differ.
    func pattern(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ seed) }
    }

    /// `bytes` cut into `size`-byte datagrams (the last may be shorter), as plain received slots.
    func datagrams(_ bytes: [UInt8], size: Int) -> [ReceivedSlot] {
        stride(from: 0, to: bytes.count, by: size).map {
            ReceivedSlot(bytes: Array(bytes[$0..<min($0 + size, bytes.count)]), segmentSize: 0)
        }
    }

    /// Receives until `expected` bytes have arrived (or two seconds pass), then checks that
    /// nothing more is waiting. Returns the slots in arrival order.
    func collect(_ socket: UDPSocket, bytes expected: Int, bufferSize: Int = 2048) -> [ReceivedSlot] {
        let batch = DatagramBatch(capacity: 16, bufferSize: bufferSize)
        var slots: [ReceivedSlot] = []
        var total = 0
        let deadline = ContinuousClock.now + .seconds(2)
        var fds = pollfd(fd: socket.fileDescriptor, events: Int16(POLLIN), revents: 0)
        while total < expected && ContinuousClock.now < deadline {
            _ = poll(&fds, 1, 100)
            let count = socket.receive(batch, count: batch.capacity)
            XCTAssertGreaterThanOrEqual(count, 0, "receive error \(count)")
            for index in 0..<max(count, 0) {
                XCTAssertEqual(batch.slots[index].truncated, 0, "slot \(slots.count) truncated")
                slots.append(ReceivedSlot(bytes: contents(batch, index), segmentSize: batch.segmentSize(index)))
                total += slots.last!.bytes.count
            }
        }
        XCTAssertEqual(total, expected, "bytes received")
        XCTAssertEqual(socket.receive(batch, count: 1), 0, "nothing more waiting")
        return slots
    }

    /// Fails (under CI) or skips when the sender cannot use UDP GSO.
    func requireSendOffload(_ socket: UDPSocket) throws {
        guard socket.sendOffload else { throw unavailable("UDP_SEGMENT not supported (kernel before 4.18?)") }
    }

    /// Turns GRO on at `socket`, failing (under CI) or skipping where the kernel lacks it.
    func requireReceiveOffload(_ socket: UDPSocket) throws {
        guard socket.enableReceiveOffload() else { throw unavailable("UDP_GRO not supported (kernel before 5.0?)") }
    }

    func endpoint(_ socket: UDPSocket) -> UDPEndpoint {
        UDPEndpoint(loopback, port: socket.localPort, family: .ipv4)
    }

    func testSegmentedSlotArrivesAsSeparateDatagrams() throws {
        let sender = try open(), receiver = try open()
        try requireSendOffload(sender)
        let payload = pattern(7 * 1000 + 333, seed: 1)
        let batch = DatagramBatch(capacity: 2, bufferSize: 65_536)
        fill(batch, 0, with: payload)
        batch.prepare(0, length: payload.count, to: endpoint(receiver), segmentSize: 1000)
        XCTAssertEqual(sender.send(batch, count: 1), UDPSocket.SendResult(accepted: 1, datagramsAccepted: 8))
        XCTAssertEqual(collect(receiver, bytes: payload.count), datagrams(payload, size: 1000))
        XCTAssertTrue(sender.sendOffload)
    }

    func testSegmentedSlotArrivesCoalescedWithReceiveOffload() throws {
        let sender = try open(), receiver = try open()
        try requireSendOffload(sender)
        XCTAssertFalse(receiver.receiveOffload)
        try requireReceiveOffload(receiver)
        XCTAssertTrue(receiver.receiveOffload)
        let payload = pattern(7 * 1000 + 333, seed: 2), single = pattern(100, seed: 3)
        let batch = DatagramBatch(capacity: 2, bufferSize: 65_536)
        fill(batch, 0, with: payload)
        batch.prepare(0, length: payload.count, to: endpoint(receiver), segmentSize: 1000)
        fill(batch, 1, with: single)
        batch.prepare(1, length: single.count, to: endpoint(receiver))
        XCTAssertEqual(sender.send(batch, count: 2), UDPSocket.SendResult(accepted: 2, datagramsAccepted: 9))
        XCTAssertEqual(collect(receiver, bytes: payload.count + single.count, bufferSize: 65_536),
                       [ReceivedSlot(bytes: payload, segmentSize: 1000), ReceivedSlot(bytes: single, segmentSize: 0)])

        // Turned off again, the receiver gets the segments one by one.
        XCTAssertTrue(receiver.disableReceiveOffload())
        XCTAssertFalse(receiver.receiveOffload)
        XCTAssertEqual(sender.send(batch, count: 1).datagramsAccepted, 8)
        XCTAssertEqual(collect(receiver, bytes: payload.count, bufferSize: 65_536), datagrams(payload, size: 1000))
    }

    func testDualStackSocketsSegmentAndCoalesceOverIPv4AndIPv6() throws {
        // The daemon's default: IPv6 sockets that reach IPv4 peers through mapped addresses.
        let sender: UDPSocket, receiver: UDPSocket
        do {
            sender = try open(.ipv6, nil)
            receiver = try open(.ipv6, nil)
        } catch {
            throw unavailable("no dual-stack sockets: \(error)")
        }
        try requireSendOffload(sender)
        try requireReceiveOffload(receiver)
        let payload = pattern(5 * 1200 + 99, seed: 5)
        let batch = DatagramBatch(capacity: 2, bufferSize: 8192)
        let destinations = [UDPEndpoint(loopback, port: receiver.localPort, family: .ipv6),
                            UDPEndpoint(IPv6Address("::1")!, port: receiver.localPort)]
        for (index, destination) in destinations.enumerated() {
            fill(batch, index, with: payload)
            batch.prepare(index, length: payload.count, to: destination, segmentSize: 1200)
        }
        XCTAssertEqual(sender.send(batch, count: 2), UDPSocket.SendResult(accepted: 2, datagramsAccepted: 12))
        XCTAssertEqual(collect(receiver, bytes: 2 * payload.count, bufferSize: 65_536),
                       Array(repeating: ReceivedSlot(bytes: payload, segmentSize: 1200), count: 2))
    }

    func testCoalescedSlotLargerThanItsBufferIsFlaggedTruncated() throws {
        let sender = try open(), receiver = try open()
        try requireSendOffload(sender)
        try requireReceiveOffload(receiver)
        let payload = pattern(3000, seed: 4)
        let batch = DatagramBatch(capacity: 1, bufferSize: 4096)
        fill(batch, 0, with: payload)
        batch.prepare(0, length: payload.count, to: endpoint(receiver), segmentSize: 1000)
        XCTAssertEqual(sender.send(batch, count: 1).datagramsAccepted, 3)
        let small = DatagramBatch(capacity: 1, bufferSize: 2048)
        XCTAssertEqual(receive(receiver, into: small, expected: 1), 1)
        XCTAssertEqual(small.slots[0].truncated, 1)
        XCTAssertEqual(contents(small, 0), Array(payload.prefix(2048)))
    }

    func testMixedBatchKeepsEachDestinationsOrder() throws {
        let sender = try open(), first = try open(), second = try open()
        try requireSendOffload(sender)
        let slots: [(bytes: [UInt8], to: UDPSocket, segmentSize: Int)] = [
            (pattern(50, seed: 10), first, 0),
            (pattern(3 * 500 + 10, seed: 11), first, 500),
            (pattern(60, seed: 12), second, 0),
            (pattern(4 * 400, seed: 13), second, 400),
            (pattern(1, seed: 14), first, 0),
        ]
        let batch = DatagramBatch(capacity: 8, bufferSize: 4096)
        for (index, slot) in slots.enumerated() {
            fill(batch, index, with: slot.bytes)
            batch.prepare(index, length: slot.bytes.count, to: endpoint(slot.to), segmentSize: slot.segmentSize)
        }
        XCTAssertEqual(sender.send(batch, count: slots.count), UDPSocket.SendResult(accepted: 5, datagramsAccepted: 11))
        for receiver in [first, second] {
            let expected = slots.filter { $0.to.localPort == receiver.localPort }
                .flatMap { datagrams($0.bytes, size: $0.segmentSize == 0 ? $0.bytes.count : $0.segmentSize) }
            XCTAssertEqual(collect(receiver, bytes: expected.reduce(0) { $0 + $1.bytes.count }), expected)
        }
    }

    func testSlotsBeyondTheSegmentLimitsAreRefused() throws {
        let sender = try open(), receiver = try open()
        try requireSendOffload(sender)
        let limit = UDPSocket.maximumSegmentedLength
        XCTAssertEqual(UDPSocket.maximumSegments, 64)
        XCTAssertEqual(limit, 65_507)
        let slots: [(bytes: [UInt8], segmentSize: Int, accepted: Bool)] = [
            (pattern(65 * 100, seed: 20), 100, false),     // one segment too many
            (pattern(10, seed: 21), 0, true),
            (pattern(limit + 1, seed: 22), 1400, false),   // one byte too long
            (pattern(64 * 100, seed: 23), 100, true),      // exactly the most segments
            (pattern(limit, seed: 24), 1400, true),        // exactly the longest message
        ]
        let batch = DatagramBatch(capacity: 8, bufferSize: 65_536)
        for (index, slot) in slots.enumerated() {
            fill(batch, index, with: slot.bytes)
            batch.prepare(index, length: slot.bytes.count, to: endpoint(receiver), segmentSize: slot.segmentSize)
        }
        XCTAssertEqual(sender.send(batch, count: slots.count),
                       UDPSocket.SendResult(accepted: 3, datagramsAccepted: 1 + 64 + 47, lastError: EMSGSIZE))
        let expected = slots.filter(\.accepted).flatMap { datagrams($0.bytes, size: $0.segmentSize == 0 ? $0.bytes.count : $0.segmentSize) }
        XCTAssertEqual(collect(receiver, bytes: expected.reduce(0) { $0 + $1.bytes.count }), expected)
        XCTAssertTrue(sender.sendOffload, "a refused oversize slot is the caller's mistake, not the kernel's")
    }

    func testRefusedSegmentationFallsBackToSeparateDatagrams() throws {
        let sender = try open(), receiver = try open()
        try requireSendOffload(sender)
        try requireReceiveOffload(receiver)
        // Without UDP checksums the kernel refuses every GSO message (EINVAL).
        var on: Int32 = 1
        XCTAssertEqual(setsockopt(sender.fileDescriptor, SOL_SOCKET, SO_NO_CHECK, &on, socklen_t(MemoryLayout<Int32>.size)), 0)
        let slots: [(bytes: [UInt8], segmentSize: Int)] = [
            (pattern(5 * 300 + 7, seed: 30), 300), (pattern(40, seed: 31), 0), (pattern(3 * 200, seed: 32), 200),
        ]
        let batch = DatagramBatch(capacity: 4, bufferSize: 4096)
        for (index, slot) in slots.enumerated() {
            fill(batch, index, with: slot.bytes)
            batch.prepare(index, length: slot.bytes.count, to: endpoint(receiver), segmentSize: slot.segmentSize)
        }
        // Every segment arrives, each a datagram of its own (GRO on loopback coalesces only GSO sends).
        let expected = slots.flatMap { datagrams($0.bytes, size: $0.segmentSize == 0 ? $0.bytes.count : $0.segmentSize) }
        let bytes = expected.reduce(0) { $0 + $1.bytes.count }
        XCTAssertEqual(sender.send(batch, count: slots.count),
                       UDPSocket.SendResult(accepted: 3, datagramsAccepted: 10, fallbacks: 1))
        XCTAssertFalse(sender.sendOffload)
        XCTAssertEqual(collect(receiver, bytes: bytes, bufferSize: 65_536), expected)
        // From now on without trying GSO: no further fallback counted.
        XCTAssertEqual(sender.send(batch, count: slots.count), UDPSocket.SendResult(accepted: 3, datagramsAccepted: 10))
        XCTAssertEqual(collect(receiver, bytes: bytes, bufferSize: 65_536), expected)
    }

    func testDisabledSendOffloadSendsSegmentsSeparately() throws {
        let sender = try open(), receiver = try open()
        try requireReceiveOffload(receiver)
        sender.disableSendOffload()
        XCTAssertFalse(sender.sendOffload)
        let payload = pattern(4 * 700 + 1, seed: 40)
        let batch = DatagramBatch(capacity: 1, bufferSize: 4096)
        fill(batch, 0, with: payload)
        batch.prepare(0, length: payload.count, to: endpoint(receiver), segmentSize: 700)
        XCTAssertEqual(sender.send(batch, count: 1), UDPSocket.SendResult(accepted: 1, datagramsAccepted: 5))
        XCTAssertEqual(collect(receiver, bytes: payload.count, bufferSize: 65_536), datagrams(payload, size: 700))
    }

    func testSegmentedSlotToARefusedDestinationKeepsSendOffload() throws {
        let sender = try open(), receiver = try open()
        try requireSendOffload(sender)
        let payload = pattern(3 * 100, seed: 50)
        let batch = DatagramBatch(capacity: 2, bufferSize: 4096)
        for index in 0..<2 { fill(batch, index, with: payload) }
        // Port 0 is refused with EINVAL, one of the errors GSO refusals use too: the separate
        // datagrams are refused as well, so GSO was not the problem.
        batch.prepare(0, length: payload.count, to: UDPEndpoint(loopback, port: 0, family: .ipv4), segmentSize: 100)
        batch.prepare(1, length: payload.count, to: endpoint(receiver), segmentSize: 100)
        XCTAssertEqual(sender.send(batch, count: 2), UDPSocket.SendResult(accepted: 1, datagramsAccepted: 3, lastError: EINVAL))
        XCTAssertTrue(sender.sendOffload)
        XCTAssertEqual(collect(receiver, bytes: payload.count), datagrams(payload, size: 100))
    }

    func testReceivedSlotsOfOneDatagramReportNoSegmentSize() throws {
        let sender = try open(), receiver = try open()
        let outgoing = DatagramBatch(capacity: 2, bufferSize: 64)
        for index in 0..<2 {
            fill(outgoing, index, with: [UInt8(index)])
            // A segment size not below the length: one plain datagram.
            outgoing.prepare(index, length: 1, to: endpoint(receiver), segmentSize: 1 + index)
        }
        XCTAssertEqual(sender.send(outgoing, count: 2), UDPSocket.SendResult(accepted: 2, datagramsAccepted: 2))
        // Received into slots last prepared for a GSO send: the stale segment size is cleared.
        let incoming = DatagramBatch(capacity: 2, bufferSize: 4096)
        for index in 0..<2 { incoming.prepare(index, length: 2100, to: endpoint(sender), segmentSize: 700) }
        var seen: [ReceivedSlot] = []
        while seen.count < 2 {
            let count = receive(receiver, into: incoming, expected: 2 - seen.count)
            guard count > 0 else { return XCTFail("datagrams missing") }
            seen += (0..<count).map { ReceivedSlot(bytes: contents(incoming, $0), segmentSize: incoming.segmentSize($0)) }
        }
        XCTAssertEqual(seen, [ReceivedSlot(bytes: [0], segmentSize: 0), ReceivedSlot(bytes: [1], segmentSize: 0)])
    }

    func testReceiveAfterPrepareWithOffsetStaysInsideTheBuffer() throws {
        let sender = try open(), receiver = try open()
        let batch = DatagramBatch(capacity: 2, bufferSize: 256)
        batch.prepare(0, offset: 100, length: 0, to: endpoint(sender))
        let payload = pattern(256, seed: 60)
        XCTAssertTrue(payload.withUnsafeBytes { sender.send($0, to: endpoint(receiver)) })
        XCTAssertEqual(receive(receiver, into: batch, expected: 1), 1)
        XCTAssertEqual(batch.slots[0].truncated, 1)
        XCTAssertEqual(Array(UnsafeRawBufferPointer(start: batch.slots[0].buffer, count: Int(batch.slots[0].length))),
                       Array(payload.prefix(156)))
        XCTAssertEqual(batch.buffer(1).load(as: UInt8.self), 0, "the next slot's buffer is untouched")
    }

    func testAdoptedSocketKeepsItsReceiveOffloadAndProbesSendOffload() throws {
        let original = try open()
        try requireSendOffload(original)
        try requireReceiveOffload(original)
        // As a rolling restart hands it over: the same socket under another descriptor.
        let adopted = UDPSocket(adopting: dup(original.fileDescriptor), family: .ipv4)
        sockets.append(adopted)
        XCTAssertTrue(adopted.sendOffload)
        XCTAssertTrue(adopted.receiveOffload)
        XCTAssertTrue(adopted.disableReceiveOffload())
        XCTAssertFalse(original.receiveOffload, "one socket, one setting")
        // Send offload state belongs to the value (and its copies), not to the descriptor.
        adopted.disableSendOffload()
        XCTAssertFalse(adopted.sendOffload)
        XCTAssertTrue(original.sendOffload)
        let copy = adopted
        XCTAssertFalse(copy.sendOffload)
    }

    func testLargeBatchBuffersCostNoMemoryUntilTouched() throws {
        let size = 65_535 + 128, capacity = 64  // the most slots a batch has (QT_MAX_BATCH)
        let batch = DatagramBatch(capacity: capacity, bufferSize: size)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        func residentPages() -> Int {
            let pages = (capacity * size + page - 1) / page
            var vector = [UInt8](repeating: 0, count: pages)
            XCTAssertEqual(mincore(batch.buffer(0), pages * page, &vector), 0)
            return vector.reduce(0) { $0 + Int($1 & 1) }
        }
        XCTAssertEqual(residentPages(), 0)
        batch.buffer(capacity - 1).storeBytes(of: 1, toByteOffset: size - 1, as: UInt8.self)
        batch.buffer(3).storeBytes(of: 1, as: UInt8.self)
        XCTAssertEqual(residentPages(), 2)
        XCTAssertEqual(batch.slots[capacity - 1].capacity, UInt32(size))
    }
}
