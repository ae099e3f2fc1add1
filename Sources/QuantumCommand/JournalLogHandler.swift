import Glibc
import Logging

/// Log lines for systemd's journal: no timestamp (journald stamps each line itself), the
/// level kept as text, and a `<N>` syslog priority prefix that journald turns into the
/// entry's priority (`journalctl -p warning` works). Otherwise shaped like swift-log's
/// `StreamLogHandler`: `<4>warning quantum: key=value [source] message`.
struct JournalLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    private let label: String

    init(label: String) {
        self.label = label
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = Self.line(level: event.level, label: label, metadata: mergedMetadata(event),
                             source: event.source, message: "\(event.message)")
        line.withUTF8 { bytes in
            // One write(2) per line: lines from different threads never interleave.
            _ = Glibc.write(STDERR_FILENO, bytes.baseAddress, bytes.count)
        }
    }

    /// One journal line, ending in a newline.
    static func line(level: Logger.Level, label: String, metadata: Logger.Metadata, source: String,
                     message: String) -> String {
        let fields = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return "<\(priority(of: level))>\(level) \(label):\(fields.isEmpty ? "" : " " + fields) [\(source)] \(message)\n"
    }

    /// The syslog priority of a swift-log level (`sd-daemon.h`'s SD_* values).
    static func priority(of level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    private func mergedMetadata(_ event: LogEvent) -> Logger.Metadata {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        if let error = event.error { merged["error"] = "\(error)" }
        return merged
    }

    /// Whether standard error is the journal: systemd sets `JOURNAL_STREAM` to the
    /// `device:inode` of the stream it connected, and this is true when stderr is that
    /// stream (not, say, a file the unit's output was redirected to by a child's shell).
    static func stderrIsJournal(environment: [String: String]) -> Bool {
        var status = stat()
        guard let value = environment["JOURNAL_STREAM"], fstat(STDERR_FILENO, &status) == 0 else { return false }
        return matches(journalStream: value, device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    /// Whether a `JOURNAL_STREAM` value (`device:inode`, both decimal) names this device and inode.
    static func matches(journalStream value: String, device: UInt64, inode: UInt64) -> Bool {
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let streamDevice = UInt64(parts[0]), let streamInode = UInt64(parts[1]) else { return false }
        return streamDevice == device && streamInode == inode
    }
}
