import Foundation
import Glibc
import QuantumCore

/// This node's persistent identity, kept in the data directory across restarts:
/// `machine-id` (32 lowercase hex digits) and `private.key` (32-byte Curve25519 private key,
/// base64). Both are created once, mode 0600, and never silently replaced.
public struct Identity: Sendable, Equatable, CustomStringConvertible {
    /// 128 random bits as 32 lowercase hex digits; names this node in the datastore.
    public let machineID: String
    /// The static private key, 32 bytes.
    public let privateKey: [UInt8]

    /// Why the identity files cannot be used; the text names the file and the problem.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// One line naming the file and the problem.
        public let description: String
    }

    /// File names inside the data directory.
    public static let machineIDFile = "machine-id"
    /// File name of the base64 private key.
    public static let privateKeyFile = "private.key"
    /// File name of the last private address this node held.
    public static let privateIPFile = "private-ip"

    /// Shows the machine ID only; the key is never printed.
    public var description: String { "Identity(machineID: \(machineID), privateKey: <redacted>)" }

    /// Loads the identity from `dataDir`, creating the directory (mode 0700) and any missing
    /// file on first start. A group- or world-accessible directory is tightened to 0700, a
    /// readable key file to 0600. A corrupt, truncated or unreadable file is an error and is
    /// left as it is.
    ///
    /// - Parameter makePrivateKey: makes a fresh 32-byte private key when none exists yet.
    public static func loadOrCreate(dataDir: String, makePrivateKey: () -> [UInt8]) throws(Failure) -> Identity {
        try prepareDirectory(dataDir)
        let machineIDPath = path(dataDir, machineIDFile)
        let machineID: String
        if let text = try readText(machineIDPath) {
            guard let parsed = parseMachineID(text) else {
                throw Failure(description: "\(machineIDPath) is corrupt: expected 32 lowercase hex digits; "
                    + "restore it from a backup or remove it to take a new identity")
            }
            machineID = parsed
        } else {
            machineID = newMachineID()
            try write(machineID + "\n", to: machineIDPath)
        }

        let keyPath = path(dataDir, privateKeyFile)
        let privateKey: [UInt8]
        if let text = try readText(keyPath) {
            guard let parsed = parsePrivateKey(text) else {
                throw Failure(description: "\(keyPath) is corrupt: expected the base64 text of a 32-byte key; "
                    + "restore it from a backup or remove it to take a new key")
            }
            try tightenFile(keyPath)
            privateKey = parsed
        } else {
            privateKey = makePrivateKey()
            precondition(privateKey.count == 32, "makePrivateKey must return 32 bytes")
            try write(Data(privateKey).base64EncodedString() + "\n", to: keyPath)
        }
        return Identity(machineID: machineID, privateKey: privateKey)
    }

    /// The private address this node held when it last ran, from `private-ip`; `nil` if none is recorded.
    public static func lastPrivateIP(dataDir: String) throws(Failure) -> IPv4Address? {
        let filePath = path(dataDir, privateIPFile)
        guard let text = try readText(filePath) else { return nil }
        guard let address = IPv4Address(withoutFinalNewline(text)) else {
            throw Failure(description: "\(filePath) is corrupt: expected an IPv4 address")
        }
        return address
    }

    /// Records the private address this node holds, so that a restart can ask for it again.
    public static func recordPrivateIP(_ address: IPv4Address, dataDir: String) throws(Failure) {
        try prepareDirectory(dataDir)
        try write("\(address)\n", to: path(dataDir, privateIPFile))
    }

    static func parseMachineID(_ text: String) -> String? {
        let digits = withoutFinalNewline(text)
        guard digits.utf8.count == 32, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { return nil }
        return String(digits)
    }

    static func parsePrivateKey(_ text: String) -> [UInt8]? {
        guard let data = Data(base64Encoded: String(withoutFinalNewline(text))), data.count == 32 else {
            return nil
        }
        return [UInt8](data)
    }

    /// The text without one final newline, which the files are written with and editors add.
    private static func withoutFinalNewline(_ text: String) -> Substring {
        text.hasSuffix("\n") ? text.dropLast() : Substring(text)
    }

    private static func newMachineID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return String(byte >> 4, radix: 16) + String(byte & 0xf, radix: 16)
        }.joined()
    }

    private static func path(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    private static func prepareDirectory(_ directory: String) throws(Failure) {
        let context = "data directory \(directory)"
        guard let status = try attempt(context, { () throws(FileSystem.Failure) in try FileSystem.status(directory) }) else {
            try attempt(context) { () throws(FileSystem.Failure) in try FileSystem.makeDirectory(directory, mode: 0o700) }
            return
        }
        guard status.isDirectory else { throw Failure(description: "\(context) is not a directory") }
        if status.mode & 0o077 != 0 {
            try attempt(context) { () throws(FileSystem.Failure) in try FileSystem.changeMode(directory, to: 0o700) }
        }
    }

    private static func tightenFile(_ filePath: String) throws(Failure) {
        try attempt(filePath) { () throws(FileSystem.Failure) in
            if let status = try FileSystem.status(filePath), status.mode & 0o077 != 0 {
                try FileSystem.changeMode(filePath, to: 0o600)
            }
        }
    }

    /// Runs a file operation, naming `context` in its error.
    private static func attempt<T>(_ context: String, _ body: () throws(FileSystem.Failure) -> T) throws(Failure) -> T {
        do { return try body() } catch { throw Failure(description: "\(context): \(error)") }
    }

    /// The text of `filePath`; `nil` when it does not exist.
    private static func readText(_ filePath: String) throws(Failure) -> String? {
        let bytes: [UInt8]?
        do { bytes = try FileSystem.read(filePath, limit: 4096) } catch {
            throw Failure(description: "cannot read \(filePath): \(error)")
        }
        guard let bytes else { return nil }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Failure(description: "\(filePath) is corrupt: not text")
        }
        return text
    }

    private static func write(_ text: String, to filePath: String) throws(Failure) {
        do { try FileSystem.writeAtomically(Array(text.utf8), to: filePath, mode: 0o600) } catch {
            throw Failure(description: "cannot write \(filePath): \(error)")
        }
    }
}
