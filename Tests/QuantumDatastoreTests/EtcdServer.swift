import Foundation
import Logging
import QuantumDatastore
import XCTest

/// A throwaway etcd started by a test: 127.0.0.1, free ports, a temporary data directory.
/// `stop()` kills only the process it started and removes the directory.
final class EtcdServer {
    let directory: URL
    let clientPort: Int
    let process: Process
    let tls: TLSFiles?

    /// Certificates made with `openssl` for a TLS etcd that also demands client certificates.
    struct TLSFiles {
        var ca: String
        var serverCert: String
        var serverKey: String
        var clientCert: String
        var clientKey: String
    }

    var endpoint: String { "127.0.0.1:\(clientPort)" }
    var url: String { "\(tls == nil ? "http" : "https")://\(endpoint)" }

    /// The etcd binary, or a skip (a failure when `CI` is set) if it is not installed.
    static func binary(_ name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        let message = "\(name) not installed — integration tests NOT run"
        if ProcessInfo.processInfo.environment["CI"] != nil {
            throw Failure("CI is set but \(message)")
        }
        print("*** WARNING: \(message) ***")
        throw XCTSkip(message)
    }

    init(withTLS: Bool = false, extraArguments: [String] = []) throws {
        let etcd = try Self.binary("etcd")
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("quantum-etcd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        clientPort = try Self.freePort()
        let peerPort = try Self.freePort()
        tls = withTLS ? try Self.makeCertificates(in: directory) : nil
        let scheme = withTLS ? "https" : "http"
        var arguments = [
            "--name", "test", "--data-dir", directory.appendingPathComponent("data").path,
            "--listen-client-urls", "\(scheme)://127.0.0.1:\(clientPort)",
            "--advertise-client-urls", "\(scheme)://127.0.0.1:\(clientPort)",
            "--listen-peer-urls", "http://127.0.0.1:\(peerPort)",
            "--initial-advertise-peer-urls", "http://127.0.0.1:\(peerPort)",
            "--initial-cluster", "test=http://127.0.0.1:\(peerPort)",
        ]
        arguments += extraArguments
        if let tls {
            arguments += ["--cert-file", tls.serverCert, "--key-file", tls.serverKey,
                          "--trusted-ca-file", tls.ca, "--client-cert-auth"]
        }
        process = Process()
        process.executableURL = URL(fileURLWithPath: etcd)
        process.arguments = arguments
        let logPath = directory.appendingPathComponent("etcd.log").path
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try log.close()
    }

    /// A client for this server (with the client certificate when it uses TLS).
    func client(endpoints: [String]? = nil, username: String? = nil, password: String? = nil,
                logger: Logger) throws -> EtcdClient {
        try EtcdClient(configuration: .init(
            endpoints: endpoints ?? [endpoint], username: username, password: password,
            tlsCACert: tls?.ca, tlsCert: tls?.clientCert, tlsKey: tls?.clientKey,
            requestTimeout: .seconds(3)), logger: logger)
    }

    /// Waits until etcd answers a range request, at most 20 s.
    func waitUntilReady(logger: Logger) async throws {
        let probe = try client(logger: logger)
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            do {
                _ = try await probe.get("/health-probe")
                try await probe.shutdown()
                return
            } catch {
                if !process.isRunning || ContinuousClock.now >= deadline { try? await probe.shutdown() }
                guard process.isRunning else {
                    let log = (try? String(contentsOf: directory.appendingPathComponent("etcd.log"), encoding: .utf8)) ?? ""
                    throw Failure("etcd exited with status \(process.terminationStatus): \(log.suffix(500))")
                }
                guard ContinuousClock.now < deadline else { throw Failure("etcd did not become ready: \(error)") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Runs `etcdctl` against this server; returns its output or throws with it.
    @discardableResult
    func etcdctl(_ arguments: [String]) throws -> String {
        let ctl = Process()
        ctl.executableURL = URL(fileURLWithPath: try Self.binary("etcdctl"))
        ctl.arguments = ["--endpoints=\(url)"] + arguments
        ctl.environment = ["ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"]
        let output = Pipe()
        ctl.standardOutput = output
        ctl.standardError = output
        try ctl.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ctl.waitUntilExit()
        guard ctl.terminationStatus == 0 else { throw Failure("etcdctl \(arguments.joined(separator: " ")): \(text)") }
        return text
    }

    /// Sends SIGTERM to the etcd this object started, SIGKILL after 5 s, then removes its directory.
    func stop() {
        if process.isRunning {
            process.terminate()
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning, Date() < deadline { usleep(20_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        try? FileManager.default.removeItem(at: directory)
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw Failure("cannot bind a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Generates a CA, a server certificate for 127.0.0.1 and a client certificate with openssl.
    static func makeCertificates(in directory: URL) throws -> TLSFiles {
        let dir = directory.path
        let openssl = try binary("openssl")
        func run(_ arguments: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: openssl)
            process.arguments = arguments
            process.currentDirectoryURL = directory
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw Failure("openssl \(arguments.first ?? ""): \(text)") }
        }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try run(["req", "-x509"] + ec + ["-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=quantum test CA"])
        try "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
            .write(toFile: "\(dir)/server.ext", atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(toFile: "\(dir)/client.ext", atomically: true, encoding: .utf8)
        for name in ["server", "client"] {
            try run(["req"] + ec + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", "/CN=\(name)"])
            try run(["x509", "-req", "-in", "\(name).csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                     "-out", "\(name).crt", "-days", "1", "-extfile", "\(name).ext"])
        }
        return TLSFiles(ca: "\(dir)/ca.crt", serverCert: "\(dir)/server.crt", serverKey: "\(dir)/server.key",
                        clientCert: "\(dir)/client.crt", clientKey: "\(dir)/client.key")
    }
}
