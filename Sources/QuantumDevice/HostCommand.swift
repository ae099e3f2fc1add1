import Foundation

/// Runs the host's network tools (`ip` from iproute2, `nft` from nftables) for the few
/// control-path changes that have no dedicated system call wrapper here: extra interface
/// addresses, policy routing and NAT. Never used on the data path.
public enum HostCommand {
    /// A tool that failed or could not be started: the command line and what it said.
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// Where the tools are looked for (they live in sbin, which a service's PATH may lack).
    static let searchPath = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]

    /// Runs `tool` with `arguments` (and `input` on its standard input); returns its standard output.
    @discardableResult
    public static func run(_ tool: String, _ arguments: [String], input: String? = nil) throws(Failure) -> String {
        let commandLine = ([tool] + arguments).joined(separator: " ")
        guard let path = searchPath.map({ "\($0)/\(tool)" }).first(where: FileManager.default.isExecutableFile) else {
            throw Failure(description: "\(commandLine): \(tool) is not installed (looked in \(searchPath.joined(separator: ", ")))")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe(), errors = Pipe(), feed = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = feed
        do {
            try process.run()
        } catch {
            throw Failure(description: "\(commandLine): could not start \(path): \(error)")
        }
        if let input { feed.fileHandleForWriting.write(Data(input.utf8)) }
        try? feed.fileHandleForWriting.close()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        let complaint = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let said = String(decoding: complaint, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure(description: "\(commandLine): exit status \(process.terminationStatus)\(said.isEmpty ? "" : ": \(said)")")
        }
        return String(decoding: printed, as: UTF8.self)
    }
}
