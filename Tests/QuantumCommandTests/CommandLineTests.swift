@testable import QuantumCommand
import XCTest

final class CommandLineTests: XCTestCase {
    func testHelpListsEveryOptionWithEnvironmentAndDefault() {
        let help = QuantumCommandLine.helpMessage(columns: 400)
            .split(whereSeparator: \.isWhitespace).joined(separator: " ")
        XCTAssertEqual(OptionTable.all.count, 48)
        for spec in OptionTable.all {
            // `--listen-port <port>`, or `--listen-ip, -ip <address>` when upstream's alias follows.
            XCTAssertTrue(help.contains(spec.flag + " ") || help.contains(spec.flag + ","), "help lacks \(spec.flag)")
            XCTAssertTrue(help.contains("(env: \(spec.environmentVariable), default: \(spec.defaultDescription))"),
                          "help lacks env/default of \(spec.flag)")
        }
        XCTAssertTrue(help.contains("UDP port to listen on (env: QUANTUM_LISTEN_PORT, default: 1099)"))
        XCTAssertTrue(help.contains("1500 Ethernet - 40 IPv6 - 8 UDP - 16 quantum header - 16 AES-GCM tag"))
    }

    func testNamesAreDerivedFromTheLongName() {
        let spec = OptionTable.datastoreTLSSkipVerify.spec
        XCTAssertEqual(spec.environmentVariable, "QUANTUM_DATASTORE_TLS_SKIP_VERIFY")
        XCTAssertEqual(spec.fileKey, "datastore-tls-skip-verify")
        XCTAssertEqual(Set(OptionTable.all.map(\.name)).count, OptionTable.all.count)
    }

    func testVersion() {
        XCTAssertEqual(QuantumCommandLine.configuration.version, "quantum 0.1.0")
        XCTAssertEqual(QuantumVersion.string, "0.1.0")
    }

    func testEveryOptionCanBeGivenOnTheCommandLine() throws {
        for spec in OptionTable.all {
            let arguments = spec.kind == .flag ? [spec.flag] : [spec.flag, "some-value"]
            let command = try QuantumCommandLine.parse(arguments)
            XCTAssertEqual(command.commandLineValues, [spec.name: spec.kind == .flag ? "true" : "some-value"])
        }
        XCTAssertEqual(try QuantumCommandLine.parse([]).commandLineValues, [:])
    }

    func testParsedCommandLineResolves() throws {
        let command = try QuantumCommandLine.parse(["--listen-port", "4000", "--disable-v6", "--workers", "8"])
        let configuration = try Configuration.resolve(commandLine: command.commandLineValues, environment: [:])
        XCTAssertEqual(configuration.listenPort, 4000)
        XCTAssertTrue(configuration.disableV6)
        XCTAssertEqual(configuration.workers, 8)
    }

    func testUnknownOptionIsAUsageError() {
        XCTAssertThrowsError(try QuantumCommandLine.parse(["--listen-prot", "1"])) { error in
            XCTAssertEqual(QuantumCommandLine.exitCode(for: error).rawValue, 64)
        }
    }
}
