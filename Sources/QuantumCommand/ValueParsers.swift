import Foundation
import Logging
import QuantumCore

/// The parsers behind the option table: each turns text into a typed value or `nil`.
///
/// They are strict: no surrounding spaces, no signs, no silent clamping.
enum ValueParser {
    /// A non-negative decimal number of at most nine digits inside `range`.
    static func integer(_ text: String, in range: ClosedRange<Int>) -> Int? {
        guard !text.isEmpty, text.count <= 9, text.allSatisfy({ $0.isASCII && $0.isNumber }),
              let number = Int(text), range.contains(number) else { return nil }
        return number
    }

    /// A UDP/TCP port, 1-65535.
    static func port(_ text: String) -> UInt16? {
        integer(text, in: 1...65535).map { UInt16($0) }
    }

    /// A boolean as upstream quantum accepted it (Go's `strconv.ParseBool`):
    /// `1 t T TRUE true True` or `0 f F FALSE false False`.
    static func boolean(_ text: String) -> Bool? {
        switch text {
        case "1", "t", "T", "TRUE", "true", "True": true
        case "0", "f", "F", "FALSE", "false", "False": false
        default: nil
        }
    }

    /// What ``boolean(_:)`` accepts, for error messages.
    static let booleanExpected = "true or false (or 1, t, T, TRUE, True, 0, f, F, FALSE, False)"

    /// A comma-separated list of non-empty names; spaces around commas are dropped.
    static func list(_ text: String) -> [String]? {
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard items.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && !$0.isWhitespace } }) else { return nil }
        return items
    }

    /// Any non-empty text without control characters (paths, user names, passwords).
    static func text(_ text: String) -> String? {
        guard !text.isEmpty, !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { return nil }
        return text
    }

    /// A Linux interface name: 1-15 bytes, not `.` or `..`, no `/`, `:` or white space;
    /// `%` only as the single `%d` that asks the kernel to pick the number.
    static func deviceName(_ text: String) -> String? {
        guard (1...15).contains(text.utf8.count), text != ".", text != "..",
              !text.contains(where: { $0 == "/" || $0 == ":" || $0.isWhitespace }),
              text.unicodeScalars.allSatisfy({ $0.properties.generalCategory != .control }) else { return nil }
        let percents = text.filter { $0 == "%" }.count
        guard percents == 0 || (percents == 1 && text.contains("%d")) else { return nil }
        return text
    }

    /// A duration such as `10s`, `5m` or `48h`, at least `minimumMilliseconds`.
    static func milliseconds(_ text: String, minimum minimumMilliseconds: Int64) -> Int64? {
        guard let milliseconds = DurationText.milliseconds(text), milliseconds >= minimumMilliseconds else { return nil }
        return milliseconds
    }

    /// A duration in whole seconds (`48h`), at least `minimumSeconds`.
    static func seconds(_ text: String, minimum minimumSeconds: Int64) -> Int64? {
        guard let milliseconds = DurationText.milliseconds(text), milliseconds % 1000 == 0,
              milliseconds / 1000 >= minimumSeconds else { return nil }
        return milliseconds / 1000
    }

    /// A duration in whole seconds of at least 1s, or `0` (`0s`) for "off".
    static func secondsOrOff(_ text: String) -> Int64? {
        text == "0" || text == "0s" ? 0 : seconds(text, minimum: 1)
    }

    /// An IPv4 address, dotted quad.
    static func ipv4(_ text: String) -> IPv4Address? {
        IPv4Address(text)
    }

    /// A comma-separated list of distinct IPv4 addresses; spaces around commas are dropped.
    static func ipv4List(_ text: String) -> [IPv4Address]? {
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { IPv4Address($0.trimmingCharacters(in: .whitespaces)) }
        guard !items.isEmpty, items.allSatisfy({ $0 != nil }) else { return nil }
        let addresses = items.compactMap { $0 }
        return Set(addresses).count == addresses.count ? addresses : nil
    }

    /// An IPv4 address other nodes can send to: not unspecified, loopback, link-local,
    /// multicast or the limited broadcast address.
    static func publicIPv4(_ text: String) -> IPv4Address? {
        guard let address = IPv4Address(text), !address.isUnspecified, !address.isLoopback, !address.isLinkLocal,
              address.value >> 28 != 0xE, address.value != UInt32.max else { return nil }
        return address
    }

    /// An IPv6 address other nodes can send to: not unspecified, loopback, link-local or multicast.
    static func publicIPv6(_ text: String) -> IPv6Address? {
        guard let address = IPv6Address(text), !address.isUnspecified, !address.isLoopback, !address.isLinkLocal,
              address.bytes[0] != 0xff else { return nil }
        return address
    }

    /// An IPv4 or IPv6 address to bind to, in its canonical text form.
    static func bindAddress(_ text: String) -> String? {
        if let address = IPv4Address(text) { return address.description }
        if !text.contains("%"), let address = IPv6Address(text) { return address.description }
        return nil
    }

    /// An IPv4 prefix with no host bits set.
    static func prefix(_ text: String) -> IPv4Prefix? {
        try? IPv4Prefix(parsing: text)
    }

    /// A swift-log level name.
    static func logLevel(_ text: String) -> Logger.Level? {
        Logger.Level(rawValue: text)
    }

    /// An etcd key prefix: starts with `/`, has no trailing `/`, no empty segment, no white space.
    static func keyPrefix(_ text: String) -> String? {
        guard text.count >= 2, text.hasPrefix("/"), !text.hasSuffix("/"), !text.contains("//"),
              !text.contains(where: { $0.isWhitespace }),
              text.unicodeScalars.allSatisfy({ $0.properties.generalCategory != .control }) else { return nil }
        return text
    }

    /// A comma-separated list of etcd endpoints, each `host:port`, `[v6]:port` or an
    /// `http://` / `https://` URL with a host and no path; spaces around commas are dropped.
    static func endpoints(_ text: String) -> [String]? {
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard !items.isEmpty, items.allSatisfy(isEndpoint) else { return nil }
        return items
    }

    private static func isEndpoint(_ item: String) -> Bool {
        let lowered = item.lowercased()
        if lowered.hasPrefix("http://") || lowered.hasPrefix("https://") {
            guard let url = URLComponents(string: item), let host = url.host, !host.isEmpty,
                  url.user == nil, url.password == nil, url.query == nil, url.fragment == nil,
                  url.path.isEmpty || url.path == "/" else { return false }
            return url.port.map { (1...65535).contains($0) } ?? true
        }
        let host: Substring
        let portText: Substring
        if item.hasPrefix("[") {
            guard let close = item.firstIndex(of: "]"), item[item.index(after: close)...].hasPrefix(":") else {
                return false
            }
            host = item[item.index(after: item.startIndex)..<close]
            portText = item[item.index(close, offsetBy: 2)...]
            guard IPv6Address(host) != nil else { return false }
        } else {
            guard let colon = item.lastIndex(of: ":") else { return false }
            host = item[..<colon]
            portText = item[item.index(after: colon)...]
            guard !host.isEmpty, host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") })
            else { return false }
        }
        return port(String(portText)) != nil
    }

    /// The stats endpoint's route for upstream's JSON: a path that the endpoint's other
    /// documents do not use.
    static func statsRoute(_ text: String) -> String? {
        guard text.hasPrefix("/"), text.count <= 256, !["/metrics", "/peers", "/node"].contains(text),
              text.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7f }),
              !text.contains("?"), !text.contains("#") else { return nil }
        return text
    }
}
