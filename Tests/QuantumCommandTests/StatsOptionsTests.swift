@testable import QuantumCommand
import XCTest

/// `--stats-address`, `--stats-port`, `--stats-route` and the `status` subcommand.
final class StatsOptionsTests: XCTestCase {
    func testDefaultsKeepTheEndpointLocal() throws {
        let configuration = try resolve()
        XCTAssertEqual(configuration.statsAddress, "127.0.0.1")
        XCTAssertEqual(configuration.statsPort, 1099)
        XCTAssertEqual(configuration.statsRoute, "/stats")
    }

    func testEverySourceSetsTheStatsOptions() throws {
        let file = ["/etc/q.yml": "stats-address: 0.0.0.0\nstats-port: 3000\nstats-route: /from-file\n"]
        let fromFile = try resolve(env: ["QUANTUM_CONF_FILE": "/etc/q.yml"], files: file)
        XCTAssertEqual([fromFile.statsAddress, "\(fromFile.statsPort)", fromFile.statsRoute], ["0.0.0.0", "3000", "/from-file"])
        let env = ["QUANTUM_CONF_FILE": "/etc/q.yml", "QUANTUM_STATS_ADDRESS": "::1", "QUANTUM_STATS_PORT": "2000",
                   "QUANTUM_STATS_ROUTE": "/from-env"]
        let fromEnvironment = try resolve(env: env, files: file)
        XCTAssertEqual([fromEnvironment.statsAddress, "\(fromEnvironment.statsPort)", fromEnvironment.statsRoute],
                       ["::1", "2000", "/from-env"])
        let command = try QuantumCommandLine.parse(["--stats-address", "127.0.0.2", "--stats-port", "0", "--stats-route", "/q"])
        let fromCommandLine = try resolve(cli: command.commandLineValues, env: env, files: file)
        XCTAssertEqual([fromCommandLine.statsAddress, "\(fromCommandLine.statsPort)", fromCommandLine.statsRoute],
                       ["127.0.0.2", "0", "/q"], "port 0 turns the endpoint off")
    }

    func testBadStatsValuesAreRefused() {
        assertRejected(cli: ["stats-port": "65536"], mentions: ["--stats-port", "65536", "0-65535"])
        assertRejected(cli: ["stats-address": "localhost"], mentions: ["--stats-address", "localhost"])
        assertRejected(cli: ["stats-route": "stats"], mentions: ["--stats-route", "starting with '/'"])
        assertRejected(cli: ["stats-route": "/metrics"], mentions: ["--stats-route", "/metrics"])
        assertRejected(cli: ["stats-route": "/a b"], mentions: ["--stats-route"])
    }

    func testStatusIsASubcommandAndTheRootStillRunsTheDaemon() throws {
        let parsed = try QuantumCommandLine.parseAsRoot(["status", "--json", "--stats-port", "2000"])
        let status = try XCTUnwrap(parsed as? StatusCommand)
        XCTAssertTrue(status.json)
        XCTAssertEqual(status.commandLineValues, ["stats-port": "2000"], "the daemon's option, given after status")
        XCTAssertTrue(try QuantumCommandLine.parseAsRoot(["--listen-port", "4000"]) is QuantumCommandLine)
    }

    func testStatusConnectsToLoopbackForAWildcardAddress() {
        XCTAssertEqual(StatusCommand.connectAddress("0.0.0.0"), "127.0.0.1")
        XCTAssertEqual(StatusCommand.connectAddress("::"), "::1")
        XCTAssertEqual(StatusCommand.connectAddress("10.0.0.5"), "10.0.0.5")
    }
}
