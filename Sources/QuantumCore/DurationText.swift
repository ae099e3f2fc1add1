/// Parses and prints durations as operators write them: `10s`, `5m`, `48h`, `1h30m`, `250ms`.
public enum DurationText {
    /// Parses a duration into whole milliseconds; `nil` when the text is not a positive duration.
    ///
    /// Accepts one or more `<number><unit>` groups with units `ms`, `s`, `m`, `h`, `d`.
    public static func milliseconds(_ text: String) -> Int64? {
        var total: Int64 = 0
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty, digits.count <= 12, let number = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix(while: { $0.isASCII && $0.isLetter })
            rest = rest.dropFirst(unit.count)
            let scale: Int64
            switch unit {
            case "ms": scale = 1
            case "s": scale = 1000
            case "m": scale = 60_000
            case "h": scale = 3_600_000
            case "d": scale = 86_400_000
            default: return nil
            }
            // Refuse, rather than trap on, totals past Int64 milliseconds (`999999999999d`).
            let (part, overflow) = number.multipliedReportingOverflow(by: scale)
            guard !overflow else { return nil }
            let (sum, sumOverflow) = total.addingReportingOverflow(part)
            guard !sumOverflow else { return nil }
            total = sum
        }
        return total > 0 ? total : nil
    }

    /// The shortest exact text for a number of seconds: `172800` → `48h`.
    public static func format(seconds: Int64) -> String {
        if seconds % 86_400 == 0, seconds >= 86_400 * 7 { return "\(seconds / 86_400)d" }
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
}
