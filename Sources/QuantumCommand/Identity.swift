import Foundation
import Glibc
import QuantumCore

/// This node's persistent identity, kept in the data directory across restarts:
/// `machine-id` (32 lowercase hex digits) and `private.key` (32-byte Curve25519 private key,
/// base64). Both are created once, mode 0600, and never silently replaced.
public struct Identity: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
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
    public var debugDescription: String { description }
    /// What `dump` and the rendering of containing values show: the machine ID only.
    public var customMirror: Mirror {
        Mirror(self, children: ["machineID": machineID, "privateKey": "<redacted>"], displayStyle: .struct)
    }

    /// Loads the identity from `dataDir`, creating the directory (mode 0700) and any missing
    /// file on first start. A corrupt, truncated or unreadable file is an error and is left
    /// as it is.
    ///
    /// The private key's exposure is refused, not repaired: a data directory or key file
    /// owned by another user, or open to group or others, stops the start with a line
    /// naming the path, its owner and mode, and the command that fixes it — quietly
    /// tightening it would hide that the key may already have been read. One exception: a
    /// directory that holds no private key yet (scripts create it with `mkdir -p`, mode 0755)
    /// has exposed nothing, so it is tightened to 0700 before the key is made, and `notice`
    /// is told so.
    ///
    /// - Parameters:
    ///   - makePrivateKey: makes a fresh 32-byte private key when none exists yet.
    ///   - notice: receives a line for each thing changed on disk besides new files.
    public static func loadOrCreate(dataDir: String, makePrivateKey: () -> [UInt8],
                                    notice: (String) -> Void = { _ in }) throws(Failure) -> Identity {
        try prepareDirectory(dataDir, notice: notice)
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
        try checkSecretFile(keyPath)
        if let text = try readText(keyPath) {
            guard let parsed = parsePrivateKey(text) else {
                throw Failure(description: "\(keyPath) is corrupt: expected the base64 text of a 32-byte key; "
                    + "restore it from a backup or remove it to take a new key")
            }
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
        try prepareDirectory(dataDir, notice: { _ in })
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

    /// Refuses a file holding a secret (a private key) that is owned by another user or
    /// readable or writable by group or others; the error names the path, its owner and mode,
    /// and the command that fixes it. A missing file passes.
    public static func checkSecretFile(_ filePath: String) throws(Failure) {
        guard let status = try attempt(filePath, { () throws(FileSystem.Failure) in try FileSystem.status(filePath) }) else {
            return
        }
        if let problem = exposure(of: status, path: filePath, privateMode: 0o600) { throw Failure(description: problem) }
    }

    /// Creates the data directory, or checks the one that exists (see `loadOrCreate`).
    private static func prepareDirectory(_ directory: String, notice: (String) -> Void) throws(Failure) {
        let context = "data directory \(directory)"
        guard let status = try attempt(context, { () throws(FileSystem.Failure) in try FileSystem.status(directory) }) else {
            try attempt(context) { () throws(FileSystem.Failure) in try FileSystem.makeDirectory(directory, mode: 0o700) }
            return
        }
        guard status.isDirectory else { throw Failure(description: "\(context) is not a directory") }
        guard let problem = exposure(of: status, path: directory, privateMode: 0o700) else { return }
        let keyPath = path(directory, privateKeyFile)
        let holdsKey = try attempt(keyPath, { () throws(FileSystem.Failure) in try FileSystem.status(keyPath) }) != nil
        guard status.owner == geteuid(), !holdsKey else { throw Failure(description: problem) }
        try attempt(context) { () throws(FileSystem.Failure) in try FileSystem.changeMode(directory, to: 0o700) }
        notice("\(context) had mode \(octal(status.mode)) and no private key yet; set it to 0700 before creating the key")
    }

    /// Why a secret's file or directory is exposed (another owner, or any group/other
    /// permission bit), with the fix; nil when it is private to this user.
    private static func exposure(of status: (mode: mode_t, isDirectory: Bool, owner: uid_t), path: String,
                                 privateMode: mode_t) -> String? {
        let user = geteuid()
        let what = status.isDirectory ? "data directory" : "private key file"
        let fix = "chown \(user) \(path) && chmod \(octal(privateMode)) \(path)"
        if status.owner != user {
            return "\(what) \(path) is owned by uid \(status.owner), not by this user (uid \(user)); refusing to use it. "
                + "If it is yours, run: \(fix)"
        }
        guard status.mode & 0o077 != 0 else { return nil }
        return "\(what) \(path) has mode \(octal(status.mode)): group or others can reach the private key; refusing to use it. "
            + "Run: chmod \(octal(privateMode)) \(path) (and replace the key if others may have read it)"
    }

    private static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
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
