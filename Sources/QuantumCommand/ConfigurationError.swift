/// Where a setting's value came from, highest precedence first.
public enum ValueOrigin: Sendable, Equatable, CustomStringConvertible {
    /// Given as `--name value` or `--flag`.
    case commandLine
    /// Given as `QUANTUM_NAME=value`.
    case environment
    /// Given as `name: value` in the config file at this path.
    case configFile(String)
    /// Nothing set it; the built-in default applies.
    case builtInDefault

    public var description: String {
        switch self {
        case .commandLine: "on the command line"
        case .environment: "in the environment"
        case .configFile(let path): "in config file \(path)"
        case .builtInDefault: "as the built-in default"
        }
    }
}

/// Why the configuration could not be resolved; each case describes itself in one line
/// that names the option, the value, where it came from and what was expected.
public enum ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A value that does not parse, or is out of range.
    case invalidValue(option: String, value: String, origin: ValueOrigin, expected: String)
    /// Options that are each valid but cannot go together; the text names them.
    case conflict(String)
    /// A config-file key that is not an option name.
    case unknownFileKey(key: String, file: String, suggestion: String?)
    /// A config-file key that names an option a file may not set (`conf-file`).
    case keyNotAllowedInFile(key: String, file: String)
    /// A config-file value that is a mapping, or otherwise not a single value.
    case unusableFileValue(key: String, file: String, problem: String)
    /// A config file that cannot be read or parsed.
    case unreadableFile(path: String, problem: String)
    /// A config file whose name ends in neither `.yml`, `.yaml` nor `.json`.
    case unsupportedFileType(path: String)

    public var description: String {
        switch self {
        case let .invalidValue(option, value, origin, expected):
            let names = "\(OptionSpec.environmentVariable(for: option)) / \(option)"
            return "invalid value '\(value)' for --\(option) (\(names)) \(origin): expected \(expected)"
        case let .conflict(text):
            return text
        case let .unknownFileKey(key, file, suggestion):
            let hint = suggestion.map { " (did you mean '\($0)'?)" } ?? ""
            return "unknown key '\(key)' in config file \(file)\(hint): keys are long option names such as listen-port"
        case let .keyNotAllowedInFile(key, file):
            return "key '\(key)' is not allowed in config file \(file): set it on the command line or in the environment"
        case let .unusableFileValue(key, file, problem):
            return "invalid value for key '\(key)' in config file \(file): \(problem)"
        case let .unreadableFile(path, problem):
            return "cannot read config file \(path): \(problem)"
        case let .unsupportedFileType(path):
            return "config file \(path) has an unsupported type: expected a name ending in .yml, .yaml or .json"
        }
    }
}
