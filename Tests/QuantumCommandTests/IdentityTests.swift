import Foundation
import Glibc
import QuantumCommand
import QuantumCore
import XCTest

final class IdentityTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "quantum-identity-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    private func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    private func contents(_ path: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: path))
    }

    func testCreatedWithPrivateModes() throws {
        let dataDir = root + "/nested/data"
        let key = [UInt8](1...32)
        let identity = try Identity.loadOrCreate(dataDir: dataDir, makePrivateKey: { key })
        XCTAssertEqual(identity.privateKey, key)
        XCTAssertEqual(identity.machineID.count, 32)
        XCTAssertTrue(identity.machineID.allSatisfy { "0123456789abcdef".contains($0) })
        XCTAssertEqual(try mode(dataDir), 0o700)
        XCTAssertEqual(try mode(dataDir + "/machine-id"), 0o600)
        XCTAssertEqual(try mode(dataDir + "/private.key"), 0o600)
        XCTAssertEqual(String(decoding: try contents(dataDir + "/machine-id"), as: UTF8.self), identity.machineID + "\n")
        XCTAssertEqual(String(decoding: try contents(dataDir + "/private.key"), as: UTF8.self),
                       Data(key).base64EncodedString() + "\n")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dataDir).sorted()
        XCTAssertEqual(leftovers, ["machine-id", "private.key"])
        XCTAssertFalse(identity.description.contains(Data(key).base64EncodedString()))
    }

    func testReusedUnchanged() throws {
        let first = try Identity.loadOrCreate(dataDir: root, makePrivateKey: { [UInt8](repeating: 7, count: 32) })
        let keyBefore = try contents(root + "/private.key")
        let idBefore = try contents(root + "/machine-id")
        let second = try Identity.loadOrCreate(dataDir: root, makePrivateKey: {
            XCTFail("a key exists; no new one may be made")
            return [UInt8](repeating: 9, count: 32)
        })
        XCTAssertEqual(first, second)
        XCTAssertEqual(try contents(root + "/private.key"), keyBefore)
        XCTAssertEqual(try contents(root + "/machine-id"), idBefore)
    }

    func testTwoNodesGetDifferentMachineIDs() throws {
        let a = try Identity.loadOrCreate(dataDir: root + "/a", makePrivateKey: { [UInt8](repeating: 1, count: 32) })
        let b = try Identity.loadOrCreate(dataDir: root + "/b", makePrivateKey: { [UInt8](repeating: 1, count: 32) })
        XCTAssertNotEqual(a.machineID, b.machineID)
    }

    func testCorruptKeyFileIsAnErrorAndLeftUntouched() throws {
        _ = try Identity.loadOrCreate(dataDir: root, makePrivateKey: { [UInt8](repeating: 3, count: 32) })
        let keyPath = root + "/private.key"
        let full = try contents(keyPath)
        for corrupt in [full.prefix(20), Data("not base64!\n".utf8), Data(), full.dropLast(2)] {
            try corrupt.write(to: URL(fileURLWithPath: keyPath))
            XCTAssertThrowsError(try Identity.loadOrCreate(dataDir: root, makePrivateKey: {
                XCTFail("a corrupt key must not be replaced")
                return [UInt8](repeating: 4, count: 32)
            })) { error in
                XCTAssertTrue("\(error)".contains(keyPath), "\(error)")
                XCTAssertTrue("\(error)".contains("corrupt"), "\(error)")
            }
            XCTAssertEqual(try contents(keyPath), corrupt)
        }
    }

    func testCorruptMachineIDIsAnError() throws {
        _ = try Identity.loadOrCreate(dataDir: root, makePrivateKey: { [UInt8](repeating: 3, count: 32) })
        let idPath = root + "/machine-id"
        let bad = Data("0123456789ABCDEF0123456789abcdef\n".utf8)
        try bad.write(to: URL(fileURLWithPath: idPath))
        XCTAssertThrowsError(try Identity.loadOrCreate(dataDir: root, makePrivateKey: { [] })) { error in
            XCTAssertTrue("\(error)".contains(idPath), "\(error)")
        }
        XCTAssertEqual(try contents(idPath), bad)
    }

    func testOpenDirectoryWithoutAKeyIsTightenedWithANotice() throws {
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root)
        var notices: [String] = []
        _ = try Identity.loadOrCreate(dataDir: root, makePrivateKey: { [UInt8](repeating: 3, count: 32) },
                                      notice: { notices.append($0) })
        XCTAssertEqual(try mode(root), 0o700)
        XCTAssertEqual(notices.count, 1)
        XCTAssertTrue(notices.first?.contains("\(root) had mode 0755") == true, "\(notices)")
    }

    /// Asserts that loading refuses with a line naming `path`, and `words`, and changes nothing.
    private func assertRefused(_ path: String, mentioning words: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let (keyBefore, modeBefore) = (try contents(root + "/private.key"), try mode(path))
        XCTAssertThrowsError(try Identity.loadOrCreate(dataDir: root, makePrivateKey: { [] }), file: file, line: line) { error in
            for word in [path] + words {
                XCTAssertTrue("\(error)".contains(word), "'\(word)' missing from: \(error)", file: file, line: line)
            }
        }
        XCTAssertEqual(try contents(root + "/private.key"), keyBefore, file: file, line: line)
        XCTAssertEqual(try mode(path), modeBefore, "nothing is silently fixed", file: file, line: line)
    }

    func testOpenDirectoryHoldingTheKeyIsRefused() throws {
        _ = try Identity.loadOrCreate(dataDir: root, makePrivateKey: { [UInt8](repeating: 3, count: 32) })
        try FileManager.default.setAttributes([.posixPermissions: 0o750], ofItemAtPath: root)
        try assertRefused(root, mentioning: ["data directory", "mode 0750", "chmod 0700 \(root)"])
    }

    func testReadableKeyFileIsRefused() throws {
        _ = try Identity.loadOrCreate(dataDir: root, makePrivateKey: { [UInt8](repeating: 3, count: 32) })
        let keyPath = root + "/private.key"
        for exposed in [0o644, 0o640, 0o604, 0o620] {
            try FileManager.default.setAttributes([.posixPermissions: exposed], ofItemAtPath: keyPath)
            try assertRefused(keyPath, mentioning: ["private key file", "mode 0\(String(exposed, radix: 8))", "chmod 0600 \(keyPath)"])
        }
    }

    func testFilesOwnedByAnotherUserAreRefused() throws {
        guard geteuid() == 0 else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("CI runs as root"); return }
            throw XCTSkip("changing a file's owner needs root; CI runs this as root")
        }
        _ = try Identity.loadOrCreate(dataDir: root, makePrivateKey: { [UInt8](repeating: 3, count: 32) })
        let keyPath = root + "/private.key"
        XCTAssertEqual(chown(keyPath, 65534, 65534), 0)
        try assertRefused(keyPath, mentioning: ["owned by uid 65534", "chown 0 \(keyPath)"])
        XCTAssertEqual(chown(keyPath, 0, 0), 0)
        XCTAssertEqual(chown(root, 65534, 65534), 0)
        try assertRefused(root, mentioning: ["owned by uid 65534", "chown 0 \(root) && chmod 0700 \(root)"])
        // Even before a key exists: someone else's directory is not ours to tighten.
        try FileManager.default.removeItem(atPath: keyPath)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root)
        XCTAssertThrowsError(try Identity.loadOrCreate(dataDir: root, makePrivateKey: { [UInt8](repeating: 3, count: 32) }))
        XCTAssertFalse(FileManager.default.fileExists(atPath: keyPath))
    }

    func testRenderingsNeverShowThePrivateKey() throws {
        let key = [UInt8](101...132)
        let identity = try Identity.loadOrCreate(dataDir: root, makePrivateKey: { key })
        var dumped = ""
        dump(identity, to: &dumped)
        for text in [String(describing: identity), String(reflecting: identity), "\(identity)", "\([identity])", dumped] {
            XCTAssertTrue(text.contains(identity.machineID), text)
            for form in [Data(key).base64EncodedString(), key.map { String(format: "%02x", $0) }.joined(), "101, 102, 103",
                         "101\n"] {
                XCTAssertFalse(text.contains(form), "the key shows as \(form) in: \(text)")
            }
        }
    }

    func testDataDirThatIsAFile() throws {
        let path = root + "/file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Identity.loadOrCreate(dataDir: path, makePrivateKey: { [] })) { error in
            XCTAssertTrue("\(error)".contains("not a directory"), "\(error)")
        }
    }

    func testLastPrivateIP() throws {
        XCTAssertNil(try Identity.lastPrivateIP(dataDir: root))
        try Identity.recordPrivateIP(IPv4Address("10.99.4.7")!, dataDir: root)
        XCTAssertEqual(try Identity.lastPrivateIP(dataDir: root), IPv4Address("10.99.4.7"))
        XCTAssertEqual(try mode(root + "/private-ip"), 0o600)
        try Identity.recordPrivateIP(IPv4Address("10.99.4.8")!, dataDir: root)
        XCTAssertEqual(try Identity.lastPrivateIP(dataDir: root), IPv4Address("10.99.4.8"))
        try Data("10.99.4".utf8).write(to: URL(fileURLWithPath: root + "/private-ip"))
        XCTAssertThrowsError(try Identity.lastPrivateIP(dataDir: root)) { error in
            XCTAssertTrue("\(error)".contains(root + "/private-ip"), "\(error)")
        }
    }
}
