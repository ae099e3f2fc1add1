import Foundation
import Glibc
import XCTest

@testable import QuantumCommand

final class PidFileTests: XCTestCase {
    private var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "quantum-pid-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
        super.tearDown()
    }

    private func file(isQuantum: Bool = true, sameNamespace: Bool = true) -> PidFile {
        PidFile(path: directory + "/quantum.pid", isQuantumProcess: { _ in isQuantum },
                sharesNetworkNamespace: { _ in sameNamespace })
    }

    private func store(_ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: directory + "/quantum.pid"))
    }

    func testWriteIsWholeAndLeavesNoTemporaryFile() throws {
        try file().write(pid: 4242)
        XCTAssertEqual(try String(contentsOfFile: directory + "/quantum.pid", encoding: .utf8), "4242\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["quantum.pid"])
    }

    func testALiveQuantumBlocksTheStartAndAnythingElseIsStale() throws {
        XCTAssertEqual(file().holder(), .none)
        let live = getppid()
        try store("\(live)\n")
        XCTAssertEqual(file(isQuantum: true).holder(), .running(live))
        XCTAssertEqual(file(isQuantum: false).holder(), .stale("process \(live) is not quantum"))
        XCTAssertEqual(file(sameNamespace: false).holder(),
                       .stale("quantum pid \(live) runs in another network namespace, an independent node; give each node its own --pid-file"),
                       "a node in another namespace is not a second copy of this one")
        XCTAssertTrue(PidFile.inSameNetworkNamespace(getpid()) && PidFile.inSameNetworkNamespace(live))
        XCTAssertThrowsError(try Daemon.checkPidFile(file(isQuantum: true), logger: .init(label: "test"))) {
            XCTAssertTrue("\($0)".contains("already running as pid \(live)"), "\($0)")
        }

        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        try store("\(finished.processIdentifier)")
        XCTAssertEqual(file().holder(), .stale("process \(finished.processIdentifier) is not running"))

        try store("not a pid")
        XCTAssertEqual(file().holder(), .stale("it does not hold a PID"))
        try store("\(getpid())")
        XCTAssertEqual(file().holder(), .stale("it names this process"))
    }

    func testRemoveOnlyTakesAwayItsOwnPid() throws {
        try store("4242\n")
        file().remove(ifHolding: 1111)
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/quantum.pid"), "a successor's file stays")
        file().remove(ifHolding: 4242)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/quantum.pid"))
    }

    func testSameProgramIsJudgedFromProc() throws {
        XCTAssertTrue(PidFile.runsSameProgram(getpid()))
        let other = Process()
        other.executableURL = URL(fileURLWithPath: "/bin/sleep")
        other.arguments = ["5"]
        try other.run()
        defer {
            other.terminate()
            other.waitUntilExit()
        }
        XCTAssertFalse(PidFile.runsSameProgram(other.processIdentifier), "sleep is not this program")
    }
}
