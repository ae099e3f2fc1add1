import ArgumentParser
import Foundation

/// Everything quantum knows about one option except how its value is parsed:
/// its name in every source (command line, environment, config file), its default and its help.
public struct OptionSpec: Sendable, Hashable {
    /// Whether an option takes a value or is a flag.
    public enum Kind: Sendable, Hashable {
        /// `--listen-port 1099`.
        case value
        /// `--disable-v4`; from the environment or a config file it is `true` or `false`.
        case flag
    }

    /// The long option name without dashes, e.g. `listen-port`; also the config-file key.
    public let name: String
    /// Value or flag.
    public let kind: Kind
    /// The default as text, parsed like a value from any other source; `nil` when unset by default.
    public let defaultValue: String?
    /// The default as shown in `--help` (`1099`, `all addresses`, `none`).
    public let defaultDescription: String
    /// What the option does, for `--help`.
    public let summary: String
    /// What a valid value looks like, for error messages ("a port number 1-65535").
    public let expected: String
    /// The placeholder shown in usage (`<port>`).
    public let valueName: String
    /// False for `conf-file`, which can come only from the command line or the environment.
    public let allowedInFile: Bool
    /// True when a config file may give the value as a list, joined with commas.
    public let acceptsList: Bool
    /// Upstream Go quantum's single-dash name for the option (`ip` for `-ip`), accepted as an alias.
    public let upstreamShortName: String?

    init(_ name: String, kind: Kind = .value, default defaultValue: String?, shown defaultDescription: String? = nil,
         valueName: String = "value", summary: String, expected: String,
         allowedInFile: Bool = true, acceptsList: Bool = false, short upstreamShortName: String? = nil) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.defaultDescription = defaultDescription ?? defaultValue ?? "none"
        self.summary = summary
        self.expected = expected
        self.valueName = valueName
        self.allowedInFile = allowedInFile
        self.acceptsList = acceptsList
        self.upstreamShortName = upstreamShortName
    }

    /// The command-line names: `--name`, and upstream's single-dash alias if there is one
    /// (one letter or digit as a short name, `-p`; longer ones as a single-dash long name, `-ip`).
    var names: NameSpecification {
        var names: [NameSpecification.Element] = [.customLong(name)]
        if let short = upstreamShortName {
            names.append(short.count == 1 ? .customShort(Character(short)) : .customLong(short, withSingleDash: true))
        }
        return NameSpecification(names)
    }

    /// `--listen-port`.
    public var flag: String { "--" + name }

    /// The config-file key: the long name, `listen-port`.
    public var fileKey: String { name }

    /// `QUANTUM_` followed by the name in upper snake case: `QUANTUM_LISTEN_PORT`.
    public var environmentVariable: String { OptionSpec.environmentVariable(for: name) }

    /// What every quantum environment variable starts with.
    public static let environmentPrefix = "QUANTUM_"

    /// The environment variable for a long option name.
    public static func environmentVariable(for name: String) -> String {
        environmentPrefix + name.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// The help line: the summary followed by the environment variable and the default.
    public var helpText: String {
        "\(summary) (env: \(environmentVariable), default: \(defaultDescription))"
    }
}

/// An option together with the parser that turns its text into a typed value.
struct TypedOption<Value: Sendable>: Sendable {
    let spec: OptionSpec
    let parse: @Sendable (String) -> Value?
}
