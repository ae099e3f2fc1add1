import Glibc
@testable import QuantumCommand
import XCTest

/// Logging under systemd: stderr is recognised as the journal from `JOURNAL_STREAM`, and
/// journal lines carry the level (as text and as a syslog priority) but no timestamp.
final class JournalLogHandlerTests: XCTestCase {
    private func stderrIdentity() throws -> (device: UInt64, inode: UInt64) {
        var status = stat()
        XCTAssertEqual(fstat(STDERR_FILENO, &status), 0)
        return (UInt64(status.st_dev), UInt64(status.st_ino))
    }

    func testStderrIsTheJournalOnlyWhenJournalStreamNamesItsDeviceAndInode() throws {
        let (device, inode) = try stderrIdentity()
        XCTAssertTrue(JournalLogHandler.stderrIsJournal(environment: ["JOURNAL_STREAM": "\(device):\(inode)"]))
        XCTAssertFalse(JournalLogHandler.stderrIsJournal(environment: [:]))
        // systemd started us, but our stderr was redirected elsewhere since.
        XCTAssertFalse(JournalLogHandler.stderrIsJournal(environment: ["JOURNAL_STREAM": "\(device):\(inode + 1)"]))
        XCTAssertFalse(JournalLogHandler.stderrIsJournal(environment: ["JOURNAL_STREAM": "\(device + 1):\(inode)"]))
    }

    func testJournalStreamValueMustBeDeviceColonInode() {
        XCTAssertTrue(JournalLogHandler.matches(journalStream: "8:123456", device: 8, inode: 123_456))
        for value in ["", "8", "8:", ":123456", "8:123456:1", "8:12345x", "0x8:123456", " 8:123456"] {
            XCTAssertFalse(JournalLogHandler.matches(journalStream: value, device: 8, inode: 123_456), value)
        }
    }

    func testJournalLineHasLevelAndPriorityButNoTimestamp() {
        let line = JournalLogHandler.line(level: .warning, label: "quantum", metadata: ["b": "2", "a": "1"],
                                          source: "QuantumCommand", message: "etcd is not usable yet")
        XCTAssertEqual(line, "<4>warning quantum: a=1 b=2 [QuantumCommand] etcd is not usable yet\n")
        XCTAssertEqual(JournalLogHandler.line(level: .info, label: "quantum", metadata: [:], source: "Q", message: "up"),
                       "<6>info quantum: [Q] up\n")
        XCTAssertEqual([.trace, .debug, .info, .notice, .warning, .error, .critical].map(JournalLogHandler.priority(of:)),
                       [7, 7, 6, 5, 4, 3, 2])
    }
}
