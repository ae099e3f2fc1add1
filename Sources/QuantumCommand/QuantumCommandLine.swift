import ArgumentParser
import Foundation
import Logging

/// `quantum`: parses the command line, resolves the configuration (command line >
/// environment > `--conf-file` > defaults), sets up logging and runs the daemon.
///
/// Every option is declared here as an optional string or a flag, so that "not given" stays
/// distinguishable from a value; names, help and parsing all come from ``OptionTable``.
public struct QuantumCommandLine: AsyncParsableCommand {
    /// Name, help text and `--version` output of the command.
    public static let configuration = CommandConfiguration(
        commandName: "quantum",
        abstract: "End-to-end encrypted mesh VPN daemon.",
        discussion: """
            Every option can also be set in the environment (QUANTUM_ and the option name in upper \
            snake case) or in the --conf-file under its long name. The command line wins over the \
            environment, which wins over the file, which wins over the defaults.
            """,
        version: "quantum \(QuantumVersion.string)")

    @Option(name: .customLong(OptionTable.confFile.spec.name), help: help(OptionTable.confFile))
    var confFile: String?
    @Option(name: .customLong(OptionTable.deviceName.spec.name), help: help(OptionTable.deviceName))
    var deviceName: String?
    @Option(name: .customLong(OptionTable.workers.spec.name), help: help(OptionTable.workers))
    var workers: String?
    @Option(name: .customLong(OptionTable.privateIP.spec.name), help: help(OptionTable.privateIP))
    var privateIP: String?
    @Option(name: .customLong(OptionTable.listenIP.spec.name), help: help(OptionTable.listenIP))
    var listenIP: String?
    @Option(name: .customLong(OptionTable.listenPort.spec.name), help: help(OptionTable.listenPort))
    var listenPort: String?
    @Option(name: .customLong(OptionTable.publicV4.spec.name), help: help(OptionTable.publicV4))
    var publicV4: String?
    @Option(name: .customLong(OptionTable.publicV6.spec.name), help: help(OptionTable.publicV6))
    var publicV6: String?
    @Flag(name: .customLong(OptionTable.disableV4.spec.name), help: help(OptionTable.disableV4))
    var disableV4 = false
    @Flag(name: .customLong(OptionTable.disableV6.spec.name), help: help(OptionTable.disableV6))
    var disableV6 = false
    @Option(name: .customLong(OptionTable.dataDir.spec.name), help: help(OptionTable.dataDir))
    var dataDir: String?
    @Option(name: .customLong(OptionTable.datastoreEndpoints.spec.name), help: help(OptionTable.datastoreEndpoints))
    var datastoreEndpoints: String?
    @Option(name: .customLong(OptionTable.datastorePrefix.spec.name), help: help(OptionTable.datastorePrefix))
    var datastorePrefix: String?
    @Option(name: .customLong(OptionTable.datastoreSyncInterval.spec.name), help: help(OptionTable.datastoreSyncInterval))
    var datastoreSyncInterval: String?
    @Option(name: .customLong(OptionTable.datastoreUsername.spec.name), help: help(OptionTable.datastoreUsername))
    var datastoreUsername: String?
    @Option(name: .customLong(OptionTable.datastorePassword.spec.name), help: help(OptionTable.datastorePassword))
    var datastorePassword: String?
    @Option(name: .customLong(OptionTable.datastoreTLSCACert.spec.name), help: help(OptionTable.datastoreTLSCACert))
    var datastoreTLSCACert: String?
    @Option(name: .customLong(OptionTable.datastoreTLSCert.spec.name), help: help(OptionTable.datastoreTLSCert))
    var datastoreTLSCert: String?
    @Option(name: .customLong(OptionTable.datastoreTLSKey.spec.name), help: help(OptionTable.datastoreTLSKey))
    var datastoreTLSKey: String?
    @Flag(name: .customLong(OptionTable.datastoreTLSSkipVerify.spec.name), help: help(OptionTable.datastoreTLSSkipVerify))
    var datastoreTLSSkipVerify = false
    @Option(name: .customLong(OptionTable.network.spec.name), help: help(OptionTable.network))
    var network: String?
    @Option(name: .customLong(OptionTable.networkStaticRange.spec.name), help: help(OptionTable.networkStaticRange))
    var networkStaticRange: String?
    @Option(name: .customLong(OptionTable.networkFloatingRange.spec.name), help: help(OptionTable.networkFloatingRange))
    var networkFloatingRange: String?
    @Option(name: .customLong(OptionTable.networkLeaseTime.spec.name), help: help(OptionTable.networkLeaseTime))
    var networkLeaseTime: String?
    @Option(name: .customLong(OptionTable.mtu.spec.name), help: help(OptionTable.mtu))
    var mtu: String?
    @Option(name: .customLong(OptionTable.logLevel.spec.name), help: help(OptionTable.logLevel))
    var logLevel: String?
    @Option(name: .customLong(OptionTable.floatingIPs.spec.name), help: help(OptionTable.floatingIPs))
    var floatingIPs: String?
    @Option(name: .customLong(OptionTable.datastoreFloatingIPTTL.spec.name), help: help(OptionTable.datastoreFloatingIPTTL))
    var datastoreFloatingIPTTL: String?
    @Flag(name: .customLong(OptionTable.forward.spec.name), help: help(OptionTable.forward))
    var forward = false
    @Option(name: .customLong(OptionTable.gateway.spec.name), help: help(OptionTable.gateway))
    var gateway: String?
    @Flag(name: .customLong(OptionTable.serveGateway.spec.name), help: help(OptionTable.serveGateway))
    var serveGateway = false

    public init() {}

    /// The options given on the command line, keyed by long name; a given flag is `true`.
    public var commandLineValues: [String: String] {
        let values: [(OptionSpec, String?)] = [
            (OptionTable.confFile.spec, confFile),
            (OptionTable.deviceName.spec, deviceName),
            (OptionTable.workers.spec, workers),
            (OptionTable.privateIP.spec, privateIP),
            (OptionTable.listenIP.spec, listenIP),
            (OptionTable.listenPort.spec, listenPort),
            (OptionTable.publicV4.spec, publicV4),
            (OptionTable.publicV6.spec, publicV6),
            (OptionTable.disableV4.spec, disableV4 ? "true" : nil),
            (OptionTable.disableV6.spec, disableV6 ? "true" : nil),
            (OptionTable.dataDir.spec, dataDir),
            (OptionTable.datastoreEndpoints.spec, datastoreEndpoints),
            (OptionTable.datastorePrefix.spec, datastorePrefix),
            (OptionTable.datastoreSyncInterval.spec, datastoreSyncInterval),
            (OptionTable.datastoreUsername.spec, datastoreUsername),
            (OptionTable.datastorePassword.spec, datastorePassword),
            (OptionTable.datastoreTLSCACert.spec, datastoreTLSCACert),
            (OptionTable.datastoreTLSCert.spec, datastoreTLSCert),
            (OptionTable.datastoreTLSKey.spec, datastoreTLSKey),
            (OptionTable.datastoreTLSSkipVerify.spec, datastoreTLSSkipVerify ? "true" : nil),
            (OptionTable.network.spec, network),
            (OptionTable.networkStaticRange.spec, networkStaticRange),
            (OptionTable.networkFloatingRange.spec, networkFloatingRange),
            (OptionTable.networkLeaseTime.spec, networkLeaseTime),
            (OptionTable.mtu.spec, mtu),
            (OptionTable.logLevel.spec, logLevel),
            (OptionTable.floatingIPs.spec, floatingIPs),
            (OptionTable.datastoreFloatingIPTTL.spec, datastoreFloatingIPTTL),
            (OptionTable.forward.spec, forward ? "true" : nil),
            (OptionTable.gateway.spec, gateway),
            (OptionTable.serveGateway.spec, serveGateway ? "true" : nil),
        ]
        return Dictionary(uniqueKeysWithValues: values.compactMap { spec, value in value.map { (spec.name, $0) } })
    }

    /// Resolves the configuration, starts logging and runs the daemon. A configuration error
    /// prints one line and exits 64 (EX_USAGE); any other start-up error prints one line and exits 1.
    public mutating func run() async throws {
        let configuration: Configuration
        do {
            configuration = try Configuration.resolve(
                commandLine: commandLineValues, environment: ProcessInfo.processInfo.environment)
        } catch {
            printError("quantum: \(error)")
            throw ExitCode(64)
        }
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "quantum")
        logger.logLevel = level
        for (name, suggestion) in Configuration.unknownEnvironmentVariables(in: ProcessInfo.processInfo.environment) {
            logger.warning("environment variable \(name) is not a quantum setting and is ignored\(suggestion.map { "; did you mean \($0)?" } ?? "")")
        }
        do {
            try await Daemon.run(configuration: configuration, logger: logger)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("quantum: \(ConfigurationFile.oneLine(error))")
            throw ExitCode.failure
        }
    }

    private static func help<Value>(_ option: TypedOption<Value>) -> ArgumentHelp {
        ArgumentHelp(option.spec.helpText, valueName: option.spec.valueName)
    }

    private func printError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
