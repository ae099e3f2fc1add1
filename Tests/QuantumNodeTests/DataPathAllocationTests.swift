import CAllocationCounter
import Foundation
import QuantumCore
import QuantumDevice
import XCTest

@testable import QuantumNode

/// The data path allocates nothing per packet: real traffic through two in-process nodes, with
/// every heap allocation by their worker threads counted (CAllocationCounter interposes malloc).
extension NodePairTests {
    /// Packets in flight per direction and round: the fake TUN queues are Unix datagram sockets,
    /// which hold `net.unix.max_dgram_qlen` (10 by default) datagrams.
    private static let burst = 8

    /// Inner payload sizes, cycled: from a 1-byte payload up to an MTU-sized packet (1420 bytes).
    private static let payloadSizes = [1, 40, 64, 300, 512, 999, 1200, 1400]

    func testWorkersAllocateNothingPerPacket() throws {
        try assertNoAllocationsPerPacket(compression: false)
    }

    /// The same with the compression plugin on both sides: text payloads go compressed, the rest as they are.
    func testWorkersAllocateNothingPerPacketWithCompression() throws {
        try assertNoAllocationsPerPacket(compression: true)
    }

    /// The positive control: the counter sees a Swift object allocated on a thread named like a
    /// worker (swift_allocObject reaches the interposed malloc), and ignores other threads.
    func testAllocationCounterSeesSwiftAllocationsOnWatchedThreadsOnly() {
        final class Box { var value = 0 }
        final class Keeper: @unchecked Sendable { var boxes: [Box] = [] }
        let keeper = Keeper()
        keeper.boxes.reserveCapacity(100)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            XCTAssertTrue(nameCurrentThread("\(Node.workerThreadPrefix)p"))
            for index in 0..<100 {
                let box = Box()
                box.value = index
                keeper.boxes.append(box)
            }
            done.signal()
        }
        allocation_counter_start(Node.workerThreadPrefix)
        thread.start()
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        let counted = allocation_counter_stop()
        XCTAssertGreaterThanOrEqual(counted, 100, "one malloc per Box at least")

        allocation_counter_start("no-such-thread")
        let others = (0..<100).map { _ in Box() }
        XCTAssertEqual(allocation_counter_stop(), 0, "the test's own thread is not watched")
        XCTAssertEqual(others.count + keeper.boxes.count, 200)
    }

    /// Warms a pair up (handshake, 1,000 packets each way), then moves 10,000 packets each way of
    /// mixed sizes with the counter on, and asserts the workers allocated nothing.
    private func assertNoAllocationsPerPacket(compression: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let a = try makeSide("10.99.4.1", compression: compression)
        let b = try makeSide("10.99.4.2", compression: compression)
        connect([a, b])
        let first = packet(from: "10.99.4.1", to: "10.99.4.2", payload: [1])
        XCTAssertEqual(deliver(first, from: a, to: b), first, "handshake", file: file, line: line)
        let forth = Self.packets(from: "10.99.4.1", to: "10.99.4.2")
        let back = Self.packets(from: "10.99.4.2", to: "10.99.4.1")
        XCTAssertGreaterThanOrEqual(Self.workerThreads(), 2, "both nodes' workers run under their thread names",
                                    file: file, line: line)
        XCTAssertEqual(a.node.compresses(to: b.mapping.privateIP), compression, file: file, line: line)
        XCTAssertEqual(b.node.compresses(to: a.mapping.privateIP), compression, file: file, line: line)

        try exchange(forth, back, between: a, and: b, packetsEachWay: 1_000)
        let measured = 10_000
        allocation_counter_start(Node.workerThreadPrefix)
        let result = Result { try exchange(forth, back, between: a, and: b, packetsEachWay: measured) }
        let allocations = allocation_counter_stop()
        try result.get()

        let moved = 2 * measured
        print("allocations per packet: \(Double(allocations) / Double(moved)) (\(allocations) over \(moved) packets"
              + "\(compression ? ", compression on" : ""))")
        XCTAssertEqual(allocations, 0, "heap allocations on worker threads over \(moved) packets", file: file, line: line)
        if compression {
            XCTAssertEqual(b.node.counters()["drop_compression"], 0, file: file, line: line)
        }
    }

    /// One packet per payload size, and with compression in mind one text payload per size too.
    private static func packets(from source: String, to destination: String) -> [[UInt8]] {
        let text = Array(String(repeating: "GET /index.html HTTP/1.1 Host: example.org ", count: 40).utf8)
        var generator = SystemRandomNumberGenerator()
        return payloadSizes.flatMap { size in
            [(0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }, Array(text.prefix(size))]
        }.map { ipv4Packet(from: IPv4Address(source)!, to: IPv4Address(destination)!, payload: $0) }
    }

    /// Threads of this process named like data-path workers (from /proc/self/task/*/comm).
    private static func workerThreads() -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.filter { task in
            let name = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)
            return name?.hasPrefix(Node.workerThreadPrefix) ?? false
        }.count
    }

    /// Sends `count` packets each way in rounds of `burst` and checks each arrives intact and in
    /// order. The test thread's own buffers are allocated up front (it is not counted anyway).
    private func exchange(_ forth: [[UInt8]], _ back: [[UInt8]], between a: Side, and b: Side,
                          packetsEachWay count: Int) throws {
        var buffer = [UInt8](repeating: 0, count: 2048)
        var sent = 0
        while sent < count {
            let round = min(Self.burst, count - sent)
            for offset in 0..<round {
                try push(forth[(sent + offset) % forth.count], into: a)
                try push(back[(sent + offset) % back.count], into: b)
            }
            for (side, expected) in [(b, forth), (a, back)] {
                for offset in 0..<round {
                    let length = try pull(from: side, into: &buffer)
                    let wanted = expected[(sent + offset) % expected.count]
                    guard buffer[0..<length].elementsEqual(wanted) else {
                        throw DataPathFailure("packet \(sent + offset) arrived altered (\(length) bytes, sent \(wanted.count))")
                    }
                }
            }
            sent += round
        }
    }

    /// Writes one packet into the side's TUN queue, waiting (up to 2 s) for room while it is full.
    private func push(_ packet: [UInt8], into side: Side) throws {
        let deadline = monotonicNanoseconds() + 2_000_000_000
        while packet.withUnsafeBytes({ side.kernel.write($0.baseAddress!, length: $0.count) }) != 0 {
            guard Self.wait(for: Int16(POLLOUT), on: side.kernel, until: deadline) else {
                throw DataPathFailure("the TUN queue stayed full for 2 s")
            }
        }
    }

    /// Reads one packet from the side's TUN queue, waiting up to 2 s for it.
    private func pull(from side: Side, into buffer: inout [UInt8]) throws -> Int {
        let deadline = monotonicNanoseconds() + 2_000_000_000
        while true {
            let length = buffer.withUnsafeMutableBytes { side.kernel.read(into: $0.baseAddress!, capacity: $0.count) }
            if length > 0 { return length }
            guard Self.wait(for: Int16(POLLIN), on: side.kernel, until: deadline) else {
                throw DataPathFailure("a packet did not arrive within 2 s")
            }
        }
    }

    /// Sleeps in poll(2) until `queue` is ready for `events`; false once `deadline` passed.
    private static func wait(for events: Int16, on queue: PacketQueue, until deadline: UInt64) -> Bool {
        let now = monotonicNanoseconds()
        guard now < deadline else { return false }
        var descriptor = pollfd(fd: queue.fileDescriptor, events: events, revents: 0)
        _ = poll(&descriptor, 1, Int32((deadline - now) / 1_000_000) + 1)
        return true
    }
}

/// Why the traffic of an allocation test did not get through.
private struct DataPathFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
