import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import QuantumCore
import Synchronization

/// A ``Datastore`` backed by etcd v3 through its JSON gateway (`POST /v3/...` on the client port).
///
/// Requests go to the endpoint that last worked; on a connection failure, or an answer with
/// HTTP status 5xx or 429, the next endpoint is tried, and an error is reported only when every
/// endpoint failed. With a username and password the client authenticates, sends the token in
/// the `Authorization` header and re-authenticates once when etcd rejects the token. Every
/// request except a watch stream is bounded by ``Configuration/requestTimeout``, and each
/// connection attempt by ``Configuration/connectTimeout``.
///
/// Watches ask etcd for progress notifications. A watch on which nothing (event, progress,
/// creation) arrived for ``Configuration/watchStallBound`` is checked with a quorum read on
/// the same endpoint; when that read fails too, the watch moves to the next endpoint and
/// resumes after the last revision it delivered, so no event is lost.
public final class EtcdClient: Datastore {
    /// How to reach and authenticate to an etcd cluster.
    public struct Configuration: Sendable {
        /// `host:port` or URLs (`http://…`, `https://…`); bare `host:port` uses https when any TLS option is set.
        public var endpoints: [String]
        /// Username for etcd authentication, nil for none.
        public var username: String?
        /// Password for etcd authentication.
        public var password: String?
        /// PEM file of the CA that signed the etcd server certificate.
        public var tlsCACert: String?
        /// PEM file of the client certificate.
        public var tlsCert: String?
        /// PEM file of the client certificate's private key.
        public var tlsKey: String?
        /// Accept any server certificate (testing only).
        public var tlsSkipVerify: Bool
        /// The bound on every request except watch streams.
        public var requestTimeout: Duration
        /// The bound on establishing a connection to one endpoint, before the next is tried.
        public var connectTimeout: Duration
        /// How long a watch may stay silent before its endpoint is probed.
        public var watchStallBound: Duration
        /// The bound on the quorum read that probes a silent watch's endpoint.
        public var probeTimeout: Duration
        /// Keys per range request when a prefix is listed. A listing (the whole map: some
        /// 3 MB at 10,000 nodes) arrives in pages of this many keys, all read at the revision
        /// of the first, so no more than one page's answer is held while it is decoded.
        public var listPageSize: Int

        public init(endpoints: [String], username: String? = nil, password: String? = nil,
                    tlsCACert: String? = nil, tlsCert: String? = nil, tlsKey: String? = nil,
                    tlsSkipVerify: Bool = false, requestTimeout: Duration = .seconds(5),
                    connectTimeout: Duration = .seconds(2), watchStallBound: Duration = .seconds(10),
                    probeTimeout: Duration = .seconds(3), listPageSize: Int = 500) {
            self.endpoints = endpoints
            self.username = username
            self.password = password
            self.tlsCACert = tlsCACert
            self.tlsCert = tlsCert
            self.tlsKey = tlsKey
            self.tlsSkipVerify = tlsSkipVerify
            self.requestTimeout = requestTimeout
            self.connectTimeout = connectTimeout
            self.watchStallBound = watchStallBound
            self.probeTimeout = probeTimeout
            self.listPageSize = listPageSize
        }

        var usesTLS: Bool { tlsCACert != nil || tlsCert != nil || tlsKey != nil || tlsSkipVerify }
    }

    private struct Endpoint {
        var name: String
        var url: String
    }

    private struct State {
        var preferred = 0
        var tokens: [Int: String] = [:]
    }

    /// A failure to exchange bytes with one endpoint (as opposed to an HTTP error answer).
    private struct TransportFailure: Error {
        var reason: String
    }

    private let configuration: Configuration
    private let endpoints: [Endpoint]
    private let http: HTTPClient
    private let logger: Logger
    /// The logger handed to the HTTP client: its per-request debug lines are noise
    /// unless the operator asked for trace.
    private let httpLogger: Logger
    private let timeout: TimeAmount
    private let state = Mutex(State())

    /// Creates a client; fails with ``DatastoreError/invalidConfiguration(_:)`` naming the
    /// problem when there are no endpoints or a TLS file cannot be loaded.
    public init(configuration: Configuration, logger: Logger) throws {
        guard !configuration.endpoints.isEmpty else {
            throw DatastoreError.invalidConfiguration("no endpoints given")
        }
        if (configuration.username == nil) != (configuration.password == nil) {
            throw DatastoreError.invalidConfiguration("username and password must be given together")
        }
        if (configuration.tlsCert == nil) != (configuration.tlsKey == nil) {
            throw DatastoreError.invalidConfiguration("a client certificate and its key must be given together")
        }
        self.configuration = configuration
        self.logger = logger
        var httpLogger = logger
        httpLogger.logLevel = logger.logLevel == .trace ? .trace : max(logger.logLevel, .warning)
        self.httpLogger = httpLogger
        let scheme = configuration.usesTLS ? "https" : "http"
        endpoints = try configuration.endpoints.map { raw in
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            var url = trimmed.contains("://") ? trimmed : "\(scheme)://\(trimmed)"
            while url.hasSuffix("/") { url.removeLast() }
            guard let parsed = URL(string: url), parsed.host != nil,
                  parsed.scheme == "http" || parsed.scheme == "https" else {
                throw DatastoreError.invalidConfiguration("endpoint '\(raw)' is not host:port or an http(s) URL")
            }
            return Endpoint(name: trimmed, url: url)
        }
        timeout = Self.timeAmount(configuration.requestTimeout)

        var httpConfiguration = HTTPClient.Configuration(
            tlsConfiguration: try Self.tlsConfiguration(configuration),
            redirectConfiguration: .disallow,
            timeout: .init(connect: Self.timeAmount(min(configuration.connectTimeout, configuration.requestTimeout))))
        // Fail fast so the next endpoint is tried; each open watch holds one connection.
        httpConfiguration.connectionPool.retryConnectionEstablishment = false
        httpConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 32
        httpConfiguration.httpVersion = .http1Only
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
    }

    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    private static func tlsConfiguration(_ configuration: Configuration) throws -> TLSConfiguration? {
        guard configuration.usesTLS else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let ca = configuration.tlsCACert {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
            } catch {
                throw DatastoreError.invalidConfiguration("cannot load CA certificate \(ca): \(error)")
            }
        }
        if let cert = configuration.tlsCert, let key = configuration.tlsKey {
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
            } catch {
                throw DatastoreError.invalidConfiguration("cannot load client certificate \(cert): \(error)")
            }
            do {
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            } catch {
                throw DatastoreError.invalidConfiguration("cannot load client key \(key): \(error)")
            }
        }
        if configuration.tlsSkipVerify { tls.certificateVerification = .none }
        return tls
    }

    /// Closes every connection; call once, after the last request and watch have ended.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    // MARK: Datastore

    public func get(_ key: String) async throws -> KeyValue? {
        let answer = try await call("/v3/kv/range", EtcdWire.RangeRequest(key: EtcdWire.base64(key)),
                                    as: EtcdWire.RangeResponse.self)
        return try answer.body.kvs?.first.map { try decode($0, from: answer.endpoint, path: "/v3/kv/range") }
    }

    /// Lists the prefix in pages of ``Configuration/listPageSize`` keys. The first page fixes
    /// the revision; the others are read at it, so the listing is one consistent snapshot (if
    /// etcd compacted that revision meanwhile, the listing fails and the caller lists again).
    public func list(prefix: String) async throws -> (items: [KeyValue], revision: Int64) {
        let path = "/v3/kv/range"
        let prefixBytes = Array(prefix.utf8)
        let rangeEnd = EtcdWire.base64(prefixRangeEnd(prefixBytes))
        var start = prefixBytes.isEmpty ? [0] : prefixBytes
        var items: [KeyValue] = []
        var revision: Int64 = 0
        var pages = 0
        while true {
            let request = EtcdWire.RangeRequest(key: EtcdWire.base64(start), rangeEnd: rangeEnd,
                                                limit: String(max(configuration.listPageSize, 1)),
                                                revision: pages == 0 ? nil : String(revision))
            let answer = try await call(path, request, as: EtcdWire.RangeResponse.self)
            let page = answer.body.kvs ?? []
            for kv in page { items.append(try decode(kv, from: answer.endpoint, path: path)) }
            if pages == 0 {
                do {
                    revision = try EtcdWire.revision(answer.body.header?.revision, "header.revision")
                } catch {
                    throw DatastoreError.badResponse(endpoint: answer.endpoint, path: path, reason: "\(error)")
                }
            }
            pages += 1
            guard answer.body.more == true else { break }
            // The next page starts just after the last key of this one.
            guard let last = page.last, let lastKey = Data(base64Encoded: last.key),
                  !Array(lastKey).lexicographicallyPrecedes(start) else {
                throw DatastoreError.badResponse(endpoint: answer.endpoint, path: path,
                                                 reason: "the answer announces more keys, but its page does not reach past where it began")
            }
            start = Array(lastKey) + [0]
        }
        return (items, revision)
    }

    public func create(_ key: String, value: [UInt8], lease: Int64?) async throws -> Bool {
        let compare = EtcdWire.Compare(key: EtcdWire.base64(key), target: "CREATE", createRevision: "0")
        return try await transaction(compare, key: key, value: value, lease: lease)
    }

    public func replace(_ key: String, value: [UInt8], ifModRevision: Int64, lease: Int64?) async throws -> Bool {
        let compare = EtcdWire.Compare(key: EtcdWire.base64(key), target: "MOD", modRevision: String(ifModRevision))
        return try await transaction(compare, key: key, value: value, lease: lease)
    }

    private func transaction(_ compare: EtcdWire.Compare, key: String, value: [UInt8], lease: Int64?) async throws -> Bool {
        let put = putRequest(key, value: value, lease: lease)
        let answer = try await withLease(lease) {
            try await self.call("/v3/kv/txn", EtcdWire.TxnRequest(compare: [compare], success: [.init(requestPut: put)]),
                                as: EtcdWire.TxnResponse.self)
        }
        return answer.body.succeeded ?? false
    }

    public func put(_ key: String, value: [UInt8], lease: Int64?) async throws {
        _ = try await withLease(lease) {
            try await self.call("/v3/kv/put", self.putRequest(key, value: value, lease: lease), as: EtcdWire.Empty.self)
        }
    }

    public func delete(_ key: String) async throws {
        _ = try await call("/v3/kv/deleterange", EtcdWire.DeleteRangeRequest(key: EtcdWire.base64(key)),
                           as: EtcdWire.Empty.self)
    }

    public func grantLease(ttlSeconds: Int64) async throws -> Int64 {
        let answer = try await call("/v3/lease/grant", EtcdWire.LeaseGrantRequest(ttl: String(ttlSeconds)),
                                    as: EtcdWire.LeaseGrantResponse.self)
        if let error = answer.body.error, !error.isEmpty {
            throw DatastoreError.http(endpoint: answer.endpoint, path: "/v3/lease/grant", status: 200, message: error)
        }
        guard let text = answer.body.id, let id = Int64(text), id != 0 else {
            throw DatastoreError.badResponse(endpoint: answer.endpoint, path: "/v3/lease/grant",
                                             reason: "no lease ID in the answer")
        }
        return id
    }

    public func keepAlive(lease: Int64) async throws -> Int64 {
        let answer = try await call("/v3/lease/keepalive", EtcdWire.LeaseIDRequest(id: String(lease)),
                                    as: EtcdWire.LeaseKeepAliveResponse.self)
        do {
            return try EtcdWire.int64(answer.body.result?.ttl, "result.TTL")
        } catch {
            throw DatastoreError.badResponse(endpoint: answer.endpoint, path: "/v3/lease/keepalive", reason: "\(error)")
        }
    }

    public func revoke(lease: Int64) async throws {
        do {
            _ = try await withLease(lease) {
                try await self.call("/v3/lease/revoke", EtcdWire.LeaseIDRequest(id: String(lease)),
                                    as: EtcdWire.Empty.self)
            }
        } catch DatastoreError.leaseNotFound {
            return
        }
    }

    public func watch(prefix: String, fromRevision: Int64) -> AsyncThrowingStream<[WatchEvent], any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await self.runWatch(prefix: prefix, fromRevision: fromRevision, continuation: continuation)
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: Plumbing

    private func putRequest(_ key: String, value: [UInt8], lease: Int64?) -> EtcdWire.PutRequest {
        EtcdWire.PutRequest(key: EtcdWire.base64(key), value: EtcdWire.base64(value),
                            lease: lease.flatMap { $0 == 0 ? nil : String($0) })
    }

    /// Turns etcd's "requested lease not found" answer into ``DatastoreError/leaseNotFound(_:)``.
    private func withLease<T>(_ lease: Int64?, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch DatastoreError.http(_, _, _, let message) where message.contains("lease not found") {
            throw DatastoreError.leaseNotFound(lease ?? 0)
        }
    }

    private func decode(_ kv: EtcdWire.KV, from endpoint: String, path: String) throws -> KeyValue {
        do {
            return try kv.keyValue()
        } catch {
            throw DatastoreError.badResponse(endpoint: endpoint, path: path, reason: "\(error)")
        }
    }

    /// Endpoint indices in the order to try them: the one that last worked first.
    private func endpointOrder() -> [Int] {
        let start = state.withLock { $0.preferred }
        return (0..<endpoints.count).map { (start + $0) % endpoints.count }
    }

    private func remember(_ index: Int) {
        state.withLock { $0.preferred = index }
    }

    /// Sends one JSON request, failing over between endpoints on connection failures.
    private func call<Response: Decodable>(_ path: String, _ request: some Encodable,
                                           as: Response.Type) async throws -> (body: Response, endpoint: String) {
        let body = try JSONEncoder().encode(request)
        var failures: [DatastoreError.Failure] = []
        for index in endpointOrder() {
            try Task.checkCancellation()
            let endpoint = endpoints[index]
            do {
                let bytes = try await exchange(path, body: body, at: index)
                remember(index)
                do {
                    return (try JSONDecoder().decode(Response.self, from: bytes), endpoint.name)
                } catch {
                    throw DatastoreError.badResponse(endpoint: endpoint.name, path: path,
                                                     reason: describeDecodingError(error))
                }
            } catch let failure as TransportFailure {
                logger.debug("etcd endpoint unusable", metadata: ["endpoint": "\(endpoint.name)", "reason": "\(failure.reason)"])
                failures.append(.init(endpoint: endpoint.name, reason: failure.reason))
            }
        }
        throw DatastoreError.unreachable(failures)
    }

    /// One request to one endpoint, authenticating first if needed and once more if the token is rejected.
    /// An answer with status 5xx or 429 is a ``TransportFailure``: that endpoint cannot serve now.
    private func exchange(_ path: String, body: Data, at index: Int, timeout: TimeAmount? = nil) async throws -> Data {
        var reauthenticated = false
        while true {
            let token = try await token(for: index, refresh: false)
            let (status, bytes) = try await send(path, body: body, token: token, at: index,
                                                 deadline: .now() + (timeout ?? self.timeout))
            try Self.failIfUnavailable(status: status, bytes)
            if status == 401, token != nil, !reauthenticated {
                reauthenticated = true
                _ = try await self.token(for: index, refresh: true)
                continue
            }
            guard (200..<300).contains(status) else {
                throw DatastoreError.http(endpoint: endpoints[index].name, path: path, status: status,
                                          message: Self.errorMessage(bytes))
            }
            return bytes
        }
    }

    /// Throws a ``TransportFailure`` for the statuses that say "this member cannot serve now"
    /// (5xx, 429), so that the next endpoint is tried.
    private static func failIfUnavailable(status: Int, _ bytes: Data) throws {
        if status >= 500 || status == 429 {
            throw TransportFailure(reason: "HTTP \(status): \(errorMessage(bytes))")
        }
    }

    private static func errorMessage(_ bytes: Data) -> String {
        if let body = try? JSONDecoder().decode(EtcdWire.ErrorBody.self, from: bytes),
           let message = body.message ?? body.error {
            return message
        }
        let text = String(decoding: bytes.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "(empty body)" : text
    }

    /// The auth token for one endpoint (tokens are per member), or nil without credentials.
    private func token(for index: Int, refresh: Bool) async throws -> String? {
        guard let username = configuration.username, let password = configuration.password else { return nil }
        if !refresh, let token = state.withLock({ $0.tokens[index] }) { return token }
        let path = "/v3/auth/authenticate"
        let body = try JSONEncoder().encode(EtcdWire.AuthenticateRequest(name: username, password: password))
        let (status, bytes) = try await send(path, body: body, token: nil, at: index, deadline: .now() + timeout)
        let name = endpoints[index].name
        try Self.failIfUnavailable(status: status, bytes)
        guard (200..<300).contains(status) else {
            throw DatastoreError.authenticationFailed(endpoint: name, message: Self.errorMessage(bytes))
        }
        guard let token = (try? JSONDecoder().decode(EtcdWire.AuthenticateResponse.self, from: bytes))?.token,
              !token.isEmpty else {
            throw DatastoreError.badResponse(endpoint: name, path: path, reason: "no token in the answer")
        }
        state.withLock { $0.tokens[index] = token }
        return token
    }

    private func httpRequest(_ path: String, body: Data, token: String?, at index: Int) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: endpoints[index].url + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: token) }
        request.body = .bytes(ByteBuffer(bytes: body))
        return request
    }

    /// Sends one request and collects the whole answer; transport problems become ``TransportFailure``.
    private func send(_ path: String, body: Data, token: String?, at index: Int,
                      deadline: NIODeadline) async throws -> (status: Int, body: Data) {
        do {
            let response = try await http.execute(httpRequest(path, body: body, token: token, at: index),
                                                  deadline: deadline, logger: httpLogger)
            let bytes = try await response.body.collect(upTo: 64 << 20)
            return (Int(response.status.code), Data(bytes.readableBytesView))
        } catch let error as CancellationError {
            throw error
        } catch {
            throw TransportFailure(reason: Self.describe(error))
        }
    }

    /// One line saying why talking to an endpoint failed, e.g. "connection refused".
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as IOError:
            return String(cString: strerror(error.errnoCode)).lowercased()
        case let error as HTTPClientError:
            switch error {
            case .connectTimeout: return "connect timed out"
            case .deadlineExceeded: return "no answer in time"
            case .readTimeout: return "read timed out"
            case .remoteConnectionClosed: return "connection closed by the server"
            default: return "\(error)"
            }
        case let error as NIOSSLError:
            return "TLS: \(error)"
        case let error as BoringSSLError:
            return "TLS: \(error)"
        default:
            return "\(error)"
        }
    }

    private func runWatch(prefix: String, fromRevision: Int64,
                          continuation: AsyncThrowingStream<[WatchEvent], any Error>.Continuation) async throws {
        let path = "/v3/watch"
        let progress = WatchProgress(nextRevision: fromRevision)
        var failures: [DatastoreError.Failure] = []
        let order = endpointOrder()
        for (position, index) in order.enumerated() {
            let name = endpoints[index].name
            var reauthenticated = false
            while true {
                let body = try JSONEncoder().encode(EtcdWire.WatchRequest(createRequest: .init(
                    key: EtcdWire.base64(prefix.isEmpty ? [0] : Array(prefix.utf8)),
                    rangeEnd: EtcdWire.base64(prefixRangeEnd(Array(prefix.utf8))),
                    startRevision: String(progress.nextRevision), progressNotify: true)))
                let token: String?
                let response: HTTPClientResponse
                do {
                    token = try await self.token(for: index, refresh: false)
                    response = try await http.execute(httpRequest(path, body: body, token: token, at: index),
                                                      deadline: .distantFuture, logger: httpLogger)
                } catch let failure as TransportFailure {
                    failures.append(.init(endpoint: name, reason: failure.reason))
                    break
                } catch let error as CancellationError {
                    throw error
                } catch let error as DatastoreError {
                    throw error
                } catch {
                    failures.append(.init(endpoint: name, reason: Self.describe(error)))
                    break
                }
                guard response.status == .ok else {
                    let bytes = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
                    if response.status == .unauthorized, token != nil, !reauthenticated {
                        reauthenticated = true
                        _ = try await self.token(for: index, refresh: true)
                        continue
                    }
                    do {
                        try Self.failIfUnavailable(status: Int(response.status.code), bytes)
                    } catch let failure as TransportFailure {
                        failures.append(.init(endpoint: name, reason: failure.reason))
                        break
                    }
                    throw DatastoreError.http(endpoint: name, path: path, status: Int(response.status.code),
                                              message: Self.errorMessage(bytes))
                }
                remember(index)
                progress.touch()
                let outcome = try await follow(response, at: index, fromRevision: fromRevision, progress: progress,
                                               continuation: continuation)
                switch outcome {
                case .authRejected where !reauthenticated:
                    reauthenticated = true
                    _ = try await self.token(for: index, refresh: true)
                    continue
                case .authRejected:
                    throw DatastoreError.watchEnded(endpoint: name, reason: "etcd rejected the auth token")
                case .stalled(let reason):
                    // Other requests should leave this endpoint too.
                    remember(order[(position + 1) % order.count])
                    failures.append(.init(endpoint: name, reason: "watch stalled: \(reason)"))
                }
                break
            }
        }
        throw DatastoreError.unreachable(failures)
    }

    /// How a watch stream on one endpoint ended without an error.
    private enum StreamOutcome {
        /// etcd refused the auth token.
        case authRejected
        /// Nothing arrived within the stall bound and the endpoint failed a quorum read.
        case stalled(reason: String)
    }

    /// What a watch has delivered so far, and when it last heard from etcd.
    final class WatchProgress: Sendable {
        private struct State {
            var nextRevision: Int64
            var lastMessage = ContinuousClock.now
        }
        private let state: Mutex<State>

        init(nextRevision: Int64) {
            state = Mutex(State(nextRevision: nextRevision))
        }

        /// The first revision not delivered yet: where a restarted watch resumes.
        var nextRevision: Int64 { state.withLock { $0.nextRevision } }
        /// When bytes last arrived on the stream.
        var lastMessage: ContinuousClock.Instant { state.withLock { $0.lastMessage } }

        func touch() {
            state.withLock { $0.lastMessage = .now }
        }

        /// Everything up to `revision` was delivered.
        func delivered(upTo revision: Int64) {
            state.withLock { $0.nextRevision = max($0.nextRevision, revision + 1) }
        }
    }

    /// Reads the stream while a watchdog checks that it stays alive; returns when either ends.
    private func follow(_ response: HTTPClientResponse, at index: Int, fromRevision: Int64, progress: WatchProgress,
                        continuation: AsyncThrowingStream<[WatchEvent], any Error>.Continuation) async throws -> StreamOutcome {
        try await withThrowingTaskGroup(of: StreamOutcome.self) { group in
            group.addTask {
                try await self.stream(response, from: self.endpoints[index].name, fromRevision: fromRevision,
                                      progress: progress, continuation: continuation)
            }
            group.addTask { try await self.watchdog(at: index, progress: progress) }
            // Both tasks only end by returning an outcome or throwing.
            let outcome = try await group.next()!
            group.cancelAll()
            return outcome
        }
    }

    /// Returns ``StreamOutcome/stalled(reason:)`` once the stream stayed silent for the stall bound
    /// and a quorum read on the same endpoint failed; a successful read keeps the watch.
    private func watchdog(at index: Int, progress: WatchProgress) async throws -> StreamOutcome {
        while true {
            let due = progress.lastMessage + configuration.watchStallBound
            if ContinuousClock.now < due {
                try await Task.sleep(until: due)
                continue
            }
            if let failure = try await probe(at: index) {
                logger.warning("etcd watch is silent and its endpoint fails a quorum read; moving to the next endpoint",
                               metadata: ["endpoint": "\(endpoints[index].name)", "silentFor": "\(configuration.watchStallBound)",
                                          "probe": "\(failure)", "resumeAt": "\(progress.nextRevision)"])
                return .stalled(reason: failure)
            }
            progress.touch()
        }
    }

    /// A linearizable range read on one endpoint, bounded by the probe timeout; nil when it
    /// succeeded, else why it failed.
    private func probe(at index: Int) async throws -> String? {
        let body = try JSONEncoder().encode(EtcdWire.RangeRequest(key: EtcdWire.base64("/")))
        do {
            _ = try await exchange("/v3/kv/range", body: body, at: index, timeout: Self.timeAmount(configuration.probeTimeout))
            return nil
        } catch let failure as TransportFailure {
            return failure.reason
        } catch let error as DatastoreError {
            // The member answered: an HTTP error other than 5xx/429 does not mean it is cut off.
            if case .http = error { return nil }
            return error.description
        }
    }

    /// Reads newline-delimited watch messages until the stream ends or fails.
    private func stream(_ response: HTTPClientResponse, from endpoint: String, fromRevision: Int64, progress: WatchProgress,
                        continuation: AsyncThrowingStream<[WatchEvent], any Error>.Continuation) async throws -> StreamOutcome {
        let path = "/v3/watch"
        var pending: [UInt8] = []
        var delivered = false
        do {
            for try await chunk in response.body {
                progress.touch()
                pending.append(contentsOf: chunk.readableBytesView)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pending[..<newline]
                    defer { pending.removeSubrange(...newline) }
                    if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) { continue }
                    let message: EtcdWire.WatchMessage
                    do {
                        message = try JSONDecoder().decode(EtcdWire.WatchMessage.self, from: Data(line))
                    } catch {
                        throw DatastoreError.badResponse(endpoint: endpoint, path: path, reason: describeDecodingError(error))
                    }
                    if let error = message.error {
                        throw DatastoreError.watchEnded(endpoint: endpoint, reason: error.message ?? "stream error")
                    }
                    guard let result = message.result else { continue }
                    if result.canceled == true {
                        let compacted = (try? EtcdWire.revision(result.compactRevision, "compact_revision")) ?? 0
                        if compacted > 0 {
                            throw DatastoreError.compacted(requested: fromRevision, compactRevision: compacted)
                        }
                        let reason = result.cancelReason ?? "cancelled by the server"
                        if !delivered, reason.contains("auth token") || reason.contains("user name is empty") {
                            return .authRejected
                        }
                        throw DatastoreError.watchEnded(endpoint: endpoint, reason: reason)
                    }
                    let events = try (result.events ?? []).map { event -> WatchEvent in
                        let kv = try decode(event.kv, from: endpoint, path: path)
                        return event.type == "DELETE" ? .delete(key: kv.key, revision: kv.modRevision) : .put(kv)
                    }
                    if let last = events.last {
                        delivered = true
                        continuation.yield(events)
                        progress.delivered(upTo: last.revision)
                    } else if let revision = try? EtcdWire.revision(result.header?.revision, "header.revision"), revision > 0,
                              result.created != true || progress.nextRevision == 0 {
                        // A progress notification (sent only once the watch has caught up), or the creation
                        // of a watch "from now": everything up to the header revision is delivered.
                        progress.delivered(upTo: revision)
                    }
                }
            }
        } catch let error as DatastoreError {
            throw error
        } catch let error as CancellationError {
            throw error
        } catch {
            throw DatastoreError.watchEnded(endpoint: endpoint, reason: Self.describe(error))
        }
        throw DatastoreError.watchEnded(endpoint: endpoint, reason: "the server closed the stream")
    }
}
