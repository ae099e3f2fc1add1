import Foundation
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

    func testOpenDirectoryIsTightened() throws {
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root)
        _ = try Identity.loadOrCreate(dataDir: root, makePrivateKey: { [UInt8](repeating: 3, count: 32) })
        XCTAssertEqual(try mode(root), 0o700)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: root + "/private.key")
        _ = try Identity.loadOrCreate(dataDir: root, makePrivateKey: { [UInt8](repeating: 3, count: 32) })
        XCTAssertEqual(try mode(root + "/private.key"), 0o600)
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
