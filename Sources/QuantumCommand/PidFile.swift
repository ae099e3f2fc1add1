import Foundation
import Glibc

/// The pid file (`--pid-file`): one line with the running daemon's PID, written atomically
/// (temporary file + rename) once the node is up, replaced by the successor of a rolling
/// restart, removed on a normal stop.
struct PidFile: Sendable {
    /// Where the file lives.
    let path: String
    /// Whether a live process is a quantum daemon (by default, from `/proc`).
    var isQuantumProcess: @Sendable (Int32) -> Bool = PidFile.runsSameProgram
    /// Whether a live process runs in this process's network namespace (by default, from `/proc`).
    var sharesNetworkNamespace: @Sendable (Int32) -> Bool = PidFile.inSameNetworkNamespace

    /// What the file says before this daemon starts.
    enum Holder: Equatable {
        /// No file: nothing to do.
        case none
        /// A live quantum daemon holds it: do not start a second one.
        case running(Int32)
        /// A file left by a dead process (or naming one that is not quantum, or a quantum in
        /// another network namespace: an independent node), or one that does not hold a PID:
        /// it will be replaced.
        case stale(String)
    }

    /// Reads the file and judges whether its PID belongs to a running quantum.
    func holder() -> Holder {
        let text: String
        do {
            guard let bytes = try FileSystem.read(path, limit: 64) else { return .none }
            text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            return .stale("unreadable (\(error))")
        }
        guard let pid = Int32(text), pid > 0 else { return .stale("it does not hold a PID") }
        guard pid != getpid() else { return .stale("it names this process") }
        guard kill(pid, 0) == 0 || errno == EPERM else { return .stale("process \(pid) is not running") }
        guard isQuantumProcess(pid) else { return .stale("process \(pid) is not quantum") }
        guard sharesNetworkNamespace(pid) else {
            return .stale("quantum pid \(pid) runs in another network namespace, an independent node; give each node its own --pid-file")
        }
        return .running(pid)
    }

    /// Writes `pid` atomically (mode 0644): readers see the old content or the new, never a
    /// partial file. The error names the file and the system's reason.
    func write(pid: Int32) throws(Daemon.StartupError) {
        do {
            try FileSystem.writeAtomically(Array("\(pid)\n".utf8), to: path, mode: 0o644)
        } catch {
            throw Daemon.StartupError(description: "cannot write the pid file \(path): \(error)")
        }
    }

    /// Removes the file if it still names `pid` (a successor may already have replaced it).
    func remove(ifHolding pid: Int32) {
        guard let bytes = try? FileSystem.read(path, limit: 64),
              Int32(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) == pid
        else { return }
        unlink(path)
    }

    /// Whether `pid` runs in the same network namespace as this process (`/proc/PID/ns/net`).
    /// Nodes in different namespaces (several on one host, as in tests and benchmarks) have
    /// their own devices and sockets: one does not make the other a second copy.
    @Sendable static func inSameNetworkNamespace(_ pid: Int32) -> Bool {
        guard let other = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net"),
              let own = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net") else { return true }
        return other == own
    }

    /// Whether `pid` runs the same program file as this process (`/proc/PID/exe`, by name:
    /// an upgraded binary shows as "quantum (deleted)" in a process started before the upgrade).
    @Sendable static func runsSameProgram(_ pid: Int32) -> Bool {
        func programName(_ link: String) -> String? {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link) else { return nil }
            let name = (target as NSString).lastPathComponent
            return name.hasSuffix(" (deleted)") ? String(name.dropLast(" (deleted)".count)) : name
        }
        guard let other = programName("/proc/\(pid)/exe"), let own = programName("/proc/self/exe") else { return false }
        return other == own
    }
}
