import Foundation
import Yams

/// Reads a `--conf-file`: YAML (`.yml`, `.yaml`) or JSON (`.json`) mapping long option names
/// to values. Every scalar is kept as its text, so file values are parsed exactly like
/// command-line and environment values.
enum ConfigurationFile {
    /// The largest config file accepted.
    static let sizeLimit = 1 << 20

    /// The option values in the file at `path`, keyed by option name.
    static func load(path: String, reader: (String) throws -> Data) throws(ConfigurationError) -> [String: String] {
        let lowered = path.lowercased()
        let isJSON = lowered.hasSuffix(".json")
        guard isJSON || lowered.hasSuffix(".yml") || lowered.hasSuffix(".yaml") else {
            throw .unsupportedFileType(path: path)
        }
        let data: Data
        do { data = try reader(path) } catch { throw .unreadableFile(path: path, problem: oneLine(error)) }
        let entries = isJSON ? try jsonEntries(data, path: path) : try yamlEntries(data, path: path)
        var values: [String: String] = [:]
        for (key, value) in entries {
            guard let spec = OptionTable.spec(named: key) else {
                throw .unknownFileKey(key: key, file: path, suggestion: suggestion(for: key))
            }
            guard spec.allowedInFile else { throw .keyNotAllowedInFile(key: key, file: path) }
            switch value {
            case .single(let text):
                values[key] = text
            case .list(let items) where spec.acceptsList:
                values[key] = items.joined(separator: ",")
            case .list:
                throw .unusableFileValue(key: key, file: path, problem: "expected a single value, not a list")
            }
        }
        return values
    }

    /// A file value: one scalar's text, or a list of them.
    enum Value: Equatable {
        case single(String)
        case list([String])
    }

    private static func yamlEntries(_ data: Data, path: String) throws(ConfigurationError) -> [(String, Value)] {
        guard let text = String(data: data, encoding: .utf8) else {
            throw .unreadableFile(path: path, problem: "not UTF-8 text")
        }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw .unreadableFile(path: path, problem: "invalid YAML: \(yamlProblem(error))")
        }
        guard let root else { return [] }
        guard let mapping = root.mapping else {
            throw .unreadableFile(path: path, problem: "expected a mapping of option names to values")
        }
        var entries: [(String, Value)] = []
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.scalar?.string else {
                throw .unreadableFile(path: path, problem: "a key that is not text at line \(keyNode.mark?.line ?? 0)")
            }
            if let scalar = valueNode.scalar {
                guard valueNode.null == nil else { throw .unusableFileValue(key: key, file: path, problem: "no value given") }
                entries.append((key, .single(scalar.string)))
            } else if let sequence = valueNode.sequence {
                var items: [String] = []
                for item in sequence {
                    guard let scalar = item.scalar, item.null == nil else {
                        throw .unusableFileValue(key: key, file: path, problem: "list items must be single values")
                    }
                    items.append(scalar.string)
                }
                entries.append((key, .list(items)))
            } else {
                throw .unusableFileValue(key: key, file: path, problem: "expected a single value, not a mapping")
            }
        }
        return entries
    }

    private static func jsonEntries(_ data: Data, path: String) throws(ConfigurationError) -> [(String, Value)] {
        let root: JSONValue
        do { root = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw .unreadableFile(path: path, problem: "invalid JSON: \(jsonProblem(data, error))")
        }
        guard case .object(let members) = root else {
            throw .unreadableFile(path: path, problem: "expected a JSON object of option names to values")
        }
        var entries: [(String, Value)] = []
        for (key, member) in members.sorted(by: { $0.key < $1.key }) {
            switch member {
            case .scalar(let text):
                entries.append((key, .single(text)))
            case .null:
                throw .unusableFileValue(key: key, file: path, problem: "no value given")
            case .array(let items):
                var texts: [String] = []
                for item in items {
                    guard case .scalar(let text) = item else {
                        throw .unusableFileValue(key: key, file: path, problem: "list items must be single values")
                    }
                    texts.append(text)
                }
                entries.append((key, .list(texts)))
            case .object:
                throw .unusableFileValue(key: key, file: path, problem: "expected a single value, not an object")
            }
        }
        return entries
    }

    /// Any JSON value; scalars keep their text (`1099`, `true`, `"quantum0"` → `quantum0`).
    private enum JSONValue: Decodable {
        case null
        case scalar(String)
        case array([JSONValue])
        case object([String: JSONValue])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let value = try? container.decode(Bool.self) {
                self = .scalar(value ? "true" : "false")
            } else if let value = try? container.decode(Int64.self) {
                self = .scalar(String(value))
            } else if let value = try? container.decode(Double.self) {
                self = .scalar(String(value))
            } else if let value = try? container.decode(String.self) {
                self = .scalar(value)
            } else if let value = try? container.decode([JSONValue].self) {
                self = .array(value)
            } else {
                self = .object(try container.decode([String: JSONValue].self))
            }
        }
    }

    /// A near miss of an option name: `listen_port`, `listenPort` or `QUANTUM_LISTEN_PORT` → `listen-port`.
    static func suggestion(for key: String) -> String? {
        var kebab = ""
        for character in key {
            if character.isUppercase, let last = kebab.last, last.isLowercase { kebab.append("-") }
            kebab.append(character == "_" ? "-" : Character(character.lowercased()))
        }
        for noise in ["--", "quantum-"] where kebab.hasPrefix(noise) {
            kebab.removeFirst(noise.count)
        }
        return OptionTable.spec(named: kebab)?.name
    }

    private static func yamlProblem(_ error: any Error) -> String {
        guard let yamlError = error as? YamlError else { return oneLine(error) }
        switch yamlError {
        case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
            return "\(problem) at line \(mark.line), column \(mark.column)"
        case let .duplicatedKeysInMapping(duplicates, _):
            return "key \(duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")) appears more than once"
        default:
            return oneLine(yamlError)
        }
    }

    /// Where the JSON goes wrong. JSONDecoder says only that the data is not valid JSON;
    /// JSONSerialization says at which character.
    private static func jsonProblem(_ data: Data, _ error: any Error) -> String {
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            if let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String {
                return oneLine(detail)
            }
        }
        return oneLine(error)
    }

    /// An error's text with line breaks folded, for a one-line message.
    static func oneLine(_ value: Any) -> String {
        "\(value)".split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .joined(separator: " ")
    }
}
