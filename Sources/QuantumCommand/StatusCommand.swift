import ArgumentParser
import Foundation
import QuantumStats

/// `quantum status`: this node and its peers, read from the running daemon's stats endpoint.
///
/// The endpoint's address and port come from the same sources as the daemon's (command line,
/// `QUANTUM_STATS_*`, `--conf-file`, defaults), so with no options it finds the local daemon.
/// The daemon's options are the root command's; they may follow `status`
/// (`quantum status --stats-port 2000`).
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show this node and its peers, read from the running daemon's stats endpoint.",
        discussion: """
            Finds the endpoint as the daemon does: --stats-address and --stats-port, their QUANTUM_STATS_* \
            variables or the --conf-file, given before or after `status` (quantum status --stats-port 2000). \
            Exits 1 with one line when the daemon is not running or its endpoint is off.
            """)

    @Flag(help: "Print the report as JSON (the endpoint's /node and /peers documents) for scripts.")
    var json = false
    /// The daemon's options (`--conf-file`, `--stats-address`, `--stats-port`, …).
    @ParentCommand var daemon: QuantumCommandLine

    /// The daemon options given, keyed by long name.
    var commandLineValues: [String: String] { daemon.commandLineValues }

    func run() async throws {
        let configuration: Configuration
        do {
            configuration = try Configuration.resolve(commandLine: commandLineValues,
                                                      environment: ProcessInfo.processInfo.environment)
        } catch {
            printError("quantum status: \(error)")
            throw ExitCode(64)
        }
        guard configuration.statsPort != 0 else {
            printError("quantum status: the stats endpoint is turned off (--stats-port 0); status reads it")
            throw ExitCode.failure
        }
        let report: StatusReport
        do {
            report = try await StatusClient.fetch(host: Self.connectAddress(configuration.statsAddress),
                                                  port: Int(configuration.statsPort))
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            FileHandle.standardOutput.write(try encoder.encode(report) + Data("\n".utf8))
        } else {
            FileHandle.standardOutput.write(Data(StatusTable.render(report).utf8))
        }
    }

    /// The address to connect to for a bind address: loopback for the wildcard addresses.
    static func connectAddress(_ bindAddress: String) -> String {
        switch bindAddress {
        case "0.0.0.0": "127.0.0.1"
        case "::": "::1"
        default: bindAddress
        }
    }

    private func printError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
