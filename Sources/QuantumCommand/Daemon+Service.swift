import Glibc
import Logging

// The daemon as a service: its pid file and what it tells the service manager.
extension Daemon {
    /// Refuses to start while the pid file names a running quantum; a stale file is replaced later.
    static func checkPidFile(_ pidFile: PidFile, logger: Logger) throws {
        switch pidFile.holder() {
        case .none:
            break
        case .running(let pid):
            throw StartupError(description: """
                quantum is already running as pid \(pid) (pid file \(pidFile.path)); stop it, or reload it with SIGHUP
                """)
        case .stale(let reason):
            logger.info("the pid file \(pidFile.path) is stale (\(reason)); it will be replaced")
        }
    }

    /// Once the node is up: a fresh start writes the pid file and says READY=1; a successor
    /// (which wrote the pid file before its predecessor let go) names itself the main process.
    static func announceUp(takeover: Takeover?, pidFile: PidFile, notifier: ServiceNotifier, logger: Logger) throws {
        if takeover == nil { try pidFile.write(pid: getpid()) }
        if let problem = takeover == nil ? notifier.ready() : notifier.tookOver() {
            logger.warning("\(problem)")
        }
    }
}
