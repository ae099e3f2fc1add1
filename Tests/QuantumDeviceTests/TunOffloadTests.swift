import Foundation
import Glibc
import QuantumCore
import XCTest
@testable import QuantumDevice

/// A real TUN device with and without the virtio-net header, each test in a network
/// namespace of its own (made for one thread, so the host's network is never touched).
/// Needs root: skipped loudly outside CI, a failure under CI.
final class TunOffloadTests: XCTestCase {
    private struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// unshare(CLONE_NEWNET) for the calling thread (Glibc's module map leaves `unshare` out).
    private static func unshareNetwork() -> Int32 {
        typealias Unshare = @convention(c) (Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "unshare") else { return -1 }
        return unsafeBitCast(symbol, to: Unshare.self)(0x4000_0000)
    }

    /// Runs `body` on a thread in a fresh network namespace and rethrows what it threw.
    private func inNetworkNamespace(_ body: @escaping @Sendable () throws -> Void) throws {
        guard getuid() == 0 else {
            if ProcessInfo.processInfo.environment["CI"] != nil { throw Failure(description: "CI must run the tests as root") }
            throw XCTSkip("SKIPPED (not under CI): TUN devices and network namespaces need root")
        }
        final class Outcome: @unchecked Sendable {
            // Written by the thread before it signals `done`, read after.
            var result: Result<Void, any Error> = .success(())
            let done = DispatchSemaphore(value: 0)
        }
        let outcome = Outcome()
        let thread = Thread {
            if TunOffloadTests.unshareNetwork() != 0 {
                outcome.result = .failure(Failure(description: "unshare(CLONE_NEWNET): \(String(cString: strerror(errno)))"))
            } else {
                outcome.result = Result { try body() }
            }
            outcome.done.signal()
        }
        thread.start()
        guard outcome.done.wait(timeout: .now() + 10) == .success else {
            throw Failure(description: "the namespace thread did not finish within 10 s")
        }
        try outcome.result.get()
    }

    func testOffloadDeviceCarriesTheHeaderAndSuccessorsFindItOnTheDescriptors() throws {
        try inNetworkNamespace {
            let device = try TunDevice(namePattern: "qo%d", queueCount: 2, offload: true)
            defer { device.close() }
            guard device.virtioHeader, device.queues.allSatisfy({ $0.virtioHeader && $0.coalescing }) else {
                throw Failure(description: "queues opened without the virtio-net header")
            }
            // This kernel (6.x) has every offload quantum asks for.
            guard device.offloads == [.checksum, .tcp4, .udp], device.offloadRefusal == nil else {
                throw Failure(description: "offloads \(device.offloads), refusal \(device.offloadRefusal ?? "-")")
            }
            // A successor learns the framing from duplicates of the descriptors.
            for offload in [true, false] {
                let copies = device.queues.map { dup($0.fileDescriptor) }
                let adopted = TunDevice(adopting: device.name, fileDescriptors: copies, offload: offload)
                defer { adopted.close() }
                guard adopted.virtioHeader, adopted.queues.allSatisfy({ $0.virtioHeader && $0.coalescing == offload }),
                      adopted.offloads == (offload ? [.checksum, .tcp4, .udp] : []) else {
                    throw Failure(description: "adopted with offload \(offload): header \(adopted.virtioHeader), "
                                  + "offloads \(adopted.offloads)")
                }
            }
        }
    }

    func testPlainDeviceIsAdoptedWithoutHeader() throws {
        try inNetworkNamespace {
            let device = try TunDevice(namePattern: "qo%d", queueCount: 1, offload: false)
            defer { device.close() }
            let adopted = TunDevice(adopting: device.name, fileDescriptors: [dup(device.queues[0].fileDescriptor)], offload: true)
            defer { adopted.close() }
            guard !device.virtioHeader, !adopted.virtioHeader, !adopted.queues[0].coalescing, adopted.offloads.isEmpty else {
                throw Failure(description: "a plain device's queues claim a virtio-net header or offloads")
            }
        }
    }

    /// An echo request written behind a virtio-net header comes back as a reply behind one.
    func testPacketsGoBothWaysBehindTheHeader() throws {
        try inNetworkNamespace {
            let device = try TunDevice(namePattern: "qo%d", queueCount: 1, offload: true)
            defer { device.close() }
            try device.configure(address: IPv4Address("10.99.0.1")!, network: try IPv4Prefix(network: IPv4Address("10.99.0.0")!, length: 24), mtu: 1420)
            let queue = device.queues[0]
            var icmp: [UInt8] = [8, 0, 0, 0, 0x12, 0x34, 0, 1] + Array("offload".utf8)
            let icmpSum = ~icmp.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: $0.count) }
            icmp[2] = UInt8(icmpSum >> 8)
            icmp[3] = UInt8(icmpSum & 0xFF)
            var request: [UInt8] = [0x45, 0, 0, UInt8(20 + icmp.count), 0, 1, 0x40, 0, 64, 1, 0, 0,
                                    10, 99, 0, 2, 10, 99, 0, 1] + icmp
            let ipSum = ~request.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: 20) }
            request[10] = UInt8(ipSum >> 8)
            request[11] = UInt8(ipSum & 0xFF)
            let header = [UInt8](repeating: 0, count: VirtioNetHeader.size)
            let written = header.withUnsafeBytes { h in request.withUnsafeBytes { queue.write(header: h.baseAddress!, packet: $0) } }
            guard written == 0 else { throw Failure(description: "write refused: errno \(written)") }
            var buffer = [UInt8](repeating: 0, count: 2048)
            var fds = pollfd(fd: queue.fileDescriptor, events: Int16(POLLIN), revents: 0)
            let deadline = ContinuousClock.now + .seconds(2)
            while ContinuousClock.now < deadline {
                _ = poll(&fds, 1, 100)
                let length = buffer.withUnsafeMutableBytes { queue.read(into: $0.baseAddress!, capacity: $0.count) }
                guard length > VirtioNetHeader.size else { continue }
                let packet = Array(buffer[VirtioNetHeader.size..<length])
                // Other packets (router solicitations...) may come first; the reply is ICMP type 0.
                guard packet[0] == 0x45, packet[9] == 1, packet[20] == 0 else { continue }
                guard Array(packet[12..<20]) == [10, 99, 0, 1, 10, 99, 0, 2], Array(packet[24...]) == Array(icmp[4...]) else {
                    throw Failure(description: "unexpected reply \(packet)")
                }
                guard buffer.withUnsafeBytes({ VirtioNetHeader(from: $0.baseAddress!) }).gsoType == VirtioNetHeader.GSO.none else {
                    throw Failure(description: "an echo reply claimed segmentation")
                }
                return
            }
            throw Failure(description: "no echo reply within 2 s")
        }
    }
}
