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
        version: "quantum \(QuantumVersion.string)",
        subcommands: [StatusCommand.self, CACommand.self, PublicKeyCommand.self])

    @Option(name: OptionTable.confFile.spec.names, help: help(OptionTable.confFile))
    var confFile: String?
    @Option(name: OptionTable.deviceName.spec.names, help: help(OptionTable.deviceName))
    var deviceName: String?
    @Option(name: OptionTable.workers.spec.names, help: help(OptionTable.workers))
    var workers: String?
    @Option(name: OptionTable.privateIP.spec.names, help: help(OptionTable.privateIP))
    var privateIP: String?
    @Option(name: OptionTable.listenIP.spec.names, help: help(OptionTable.listenIP))
    var listenIP: String?
    @Option(name: OptionTable.listenPort.spec.names, help: help(OptionTable.listenPort))
    var listenPort: String?
    @Option(name: OptionTable.publicV4.spec.names, help: help(OptionTable.publicV4))
    var publicV4: String?
    @Option(name: OptionTable.publicV6.spec.names, help: help(OptionTable.publicV6))
    var publicV6: String?
    @Flag(name: OptionTable.disableV4.spec.names, help: help(OptionTable.disableV4))
    var disableV4 = false
    @Flag(name: OptionTable.disableV6.spec.names, help: help(OptionTable.disableV6))
    var disableV6 = false
    @Option(name: OptionTable.dataDir.spec.names, help: help(OptionTable.dataDir))
    var dataDir: String?
    @Option(name: OptionTable.datastoreEndpoints.spec.names, help: help(OptionTable.datastoreEndpoints))
    var datastoreEndpoints: String?
    @Option(name: OptionTable.datastorePrefix.spec.names, help: help(OptionTable.datastorePrefix))
    var datastorePrefix: String?
    @Option(name: OptionTable.datastoreSyncInterval.spec.names, help: help(OptionTable.datastoreSyncInterval))
    var datastoreSyncInterval: String?
    @Option(name: OptionTable.datastoreUsername.spec.names, help: help(OptionTable.datastoreUsername))
    var datastoreUsername: String?
    @Option(name: OptionTable.datastorePassword.spec.names, help: help(OptionTable.datastorePassword))
    var datastorePassword: String?
    @Option(name: OptionTable.datastoreTLSCACert.spec.names, help: help(OptionTable.datastoreTLSCACert))
    var datastoreTLSCACert: String?
    @Option(name: OptionTable.datastoreTLSCert.spec.names, help: help(OptionTable.datastoreTLSCert))
    var datastoreTLSCert: String?
    @Option(name: OptionTable.datastoreTLSKey.spec.names, help: help(OptionTable.datastoreTLSKey))
    var datastoreTLSKey: String?
    @Flag(name: OptionTable.datastoreTLSSkipVerify.spec.names, help: help(OptionTable.datastoreTLSSkipVerify))
    var datastoreTLSSkipVerify = false
    @Option(name: OptionTable.network.spec.names, help: help(OptionTable.network))
    var network: String?
    @Option(name: OptionTable.networkStaticRange.spec.names, help: help(OptionTable.networkStaticRange))
    var networkStaticRange: String?
    @Option(name: OptionTable.networkFloatingRange.spec.names, help: help(OptionTable.networkFloatingRange))
    var networkFloatingRange: String?
    @Option(name: OptionTable.networkLeaseTime.spec.names, help: help(OptionTable.networkLeaseTime))
    var networkLeaseTime: String?
    @Option(name: OptionTable.mtu.spec.names, help: help(OptionTable.mtu))
    var mtu: String?
    @Option(name: OptionTable.logLevel.spec.names, help: help(OptionTable.logLevel))
    var logLevel: String?
    @Option(name: OptionTable.statsAddress.spec.names, help: help(OptionTable.statsAddress))
    var statsAddress: String?
    @Option(name: OptionTable.statsPort.spec.names, help: help(OptionTable.statsPort))
    var statsPort: String?
    @Option(name: OptionTable.statsRoute.spec.names, help: help(OptionTable.statsRoute))
    var statsRoute: String?
    @Option(name: OptionTable.plugins.spec.names, help: help(OptionTable.plugins))
    var plugins: String?
    @Option(name: OptionTable.datastoreRefreshInterval.spec.names, help: help(OptionTable.datastoreRefreshInterval))
    var datastoreRefreshInterval: String?
    @Option(name: OptionTable.datastore.spec.names, help: help(OptionTable.datastore))
    var datastore: String?
    @Option(name: OptionTable.networkBackend.spec.names, help: help(OptionTable.networkBackend))
    var networkBackend: String?
    @Flag(name: OptionTable.dtlsSkipVerify.spec.names, help: help(OptionTable.dtlsSkipVerify))
    var dtlsSkipVerify = false
    @Option(name: OptionTable.dtlsCACert.spec.names, help: help(OptionTable.dtlsCACert))
    var dtlsCACert: String?
    @Option(name: OptionTable.dtlsCert.spec.names, help: help(OptionTable.dtlsCert))
    var dtlsCert: String?
    @Option(name: OptionTable.dtlsKey.spec.names, help: help(OptionTable.dtlsKey))
    var dtlsKey: String?
    /// Upstream's `-v`; `--version` is ArgumentParser's own.
    @Flag(name: .customShort("v"), help: "Print the version and exit (same as --version)")
    var printVersion = false
    @Option(name: OptionTable.pidFile.spec.names, help: help(OptionTable.pidFile))
    var pidFile: String?
    @Option(name: OptionTable.floatingIPs.spec.names, help: help(OptionTable.floatingIPs))
    var floatingIPs: String?
    @Option(name: OptionTable.datastoreFloatingIPTTL.spec.names, help: help(OptionTable.datastoreFloatingIPTTL))
    var datastoreFloatingIPTTL: String?
    @Flag(name: OptionTable.forward.spec.names, help: help(OptionTable.forward))
    var forward = false
    @Option(name: OptionTable.gateway.spec.names, help: help(OptionTable.gateway))
    var gateway: String?
    @Flag(name: OptionTable.serveGateway.spec.names, help: help(OptionTable.serveGateway))
    var serveGateway = false
    @Option(name: OptionTable.keepalive.spec.names, help: help(OptionTable.keepalive))
    var keepalive: String?
    @Option(name: OptionTable.networkCACert.spec.names, help: help(OptionTable.networkCACert))
    var networkCACert: String?
    @Option(name: OptionTable.nodeCert.spec.names, help: help(OptionTable.nodeCert))
    var nodeCert: String?
    @Flag(name: OptionTable.relay.spec.names, help: help(OptionTable.relay))
    var relay = false

    @Option(name: OptionTable.offload.spec.names, help: help(OptionTable.offload))
    var offload: String?

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
            (OptionTable.statsAddress.spec, statsAddress),
            (OptionTable.statsPort.spec, statsPort),
            (OptionTable.statsRoute.spec, statsRoute),
            (OptionTable.plugins.spec, plugins),
            (OptionTable.datastoreRefreshInterval.spec, datastoreRefreshInterval),
            (OptionTable.datastore.spec, datastore),
            (OptionTable.networkBackend.spec, networkBackend),
            (OptionTable.dtlsSkipVerify.spec, dtlsSkipVerify ? "true" : nil),
            (OptionTable.dtlsCACert.spec, dtlsCACert),
            (OptionTable.dtlsCert.spec, dtlsCert),
            (OptionTable.dtlsKey.spec, dtlsKey),
            (OptionTable.pidFile.spec, pidFile),
            (OptionTable.floatingIPs.spec, floatingIPs),
            (OptionTable.datastoreFloatingIPTTL.spec, datastoreFloatingIPTTL),
            (OptionTable.forward.spec, forward ? "true" : nil),
            (OptionTable.gateway.spec, gateway),
            (OptionTable.serveGateway.spec, serveGateway ? "true" : nil),
            (OptionTable.keepalive.spec, keepalive),
            (OptionTable.networkCACert.spec, networkCACert),
            (OptionTable.nodeCert.spec, nodeCert),
            (OptionTable.relay.spec, relay ? "true" : nil),
            (OptionTable.offload.spec, offload),
        ]
        return Dictionary(uniqueKeysWithValues: values.compactMap { spec, value in value.map { (spec.name, $0) } })
    }

    /// Resolves the configuration, starts logging and runs the daemon. A configuration error
    /// prints one line and exits 64 (EX_USAGE); any other start-up error prints one line and exits 1.
    public mutating func run() async throws {
        if printVersion {
            print(Self.configuration.version)
            return
        }
        // Set when a running daemon started this process to take over (rolling restart).
        let handover = Takeover.inheritedChannel()
        let configuration: Configuration
        do {
            configuration = try Configuration.resolve(
                commandLine: commandLineValues, environment: ProcessInfo.processInfo.environment)
        } catch {
            if let handover { Takeover.reportStopping("\(error)", over: handover) }
            printError("quantum: \(error)")
            throw ExitCode(64)
        }
        let level = configuration.logLevel
        let toJournal = JournalLogHandler.stderrIsJournal(environment: ProcessInfo.processInfo.environment)
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = toJournal ? JournalLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "quantum")
        logger.logLevel = level
        for (name, suggestion) in Configuration.unknownEnvironmentVariables(in: ProcessInfo.processInfo.environment) {
            logger.warning("environment variable \(name) is not a quantum setting and is ignored\(suggestion.map { "; did you mean \($0)?" } ?? "")")
        }
        do {
            try await Daemon.run(configuration: configuration, logger: logger, handover: handover)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            if let handover { Takeover.reportStopping(ConfigurationFile.oneLine(error), over: handover) }
            printError("quantum: \(ConfigurationFile.oneLine(error))")
            throw ExitCode.failure
        }
    }

    static func help<Value>(_ option: TypedOption<Value>) -> ArgumentHelp {
        ArgumentHelp(option.spec.helpText, valueName: option.spec.valueName)
    }

    private func printError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
