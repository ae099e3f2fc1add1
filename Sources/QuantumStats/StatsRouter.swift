import NIOHTTP1
import QuantumDatastore
import QuantumNode

/// Where the endpoint's documents come from, read at every request.
public struct StatsSource: Sendable {
    /// The node's counters and peers now.
    public var snapshot: @Sendable () -> NodeSnapshot
    /// Whether the node follows the datastore.
    public var sync: @Sendable () -> NetworkRegistry.SyncStatus

    public init(snapshot: @escaping @Sendable () -> NodeSnapshot,
                sync: @escaping @Sendable () -> NetworkRegistry.SyncStatus) {
        self.snapshot = snapshot
        self.sync = sync
    }
}

/// An answer of the endpoint.
struct StatsResponse: Equatable {
    var status: HTTPResponseStatus
    var contentType: String
    var body: [UInt8]
    /// Extra headers (`Allow` on 405).
    var headers: [(String, String)] = []

    static func == (a: StatsResponse, b: StatsResponse) -> Bool {
        a.status == b.status && a.contentType == b.contentType && a.body == b.body
            && a.headers.map { "\($0.0): \($0.1)" } == b.headers.map { "\($0.0): \($0.1)" }
    }

    static func text(_ status: HTTPResponseStatus, _ message: String) -> StatsResponse {
        StatsResponse(status: status, contentType: "text/plain; charset=utf-8", body: Array((message + "\n").utf8))
    }
}

/// Maps a request line to an answer: `GET <route>` (upstream's `/stats`), `GET /metrics`,
/// `GET /peers`, `GET /node`; `HEAD` like `GET` without a body. Anything else on a known
/// path is 405, an unknown path 404. A query string is ignored, except `pretty`
/// (as upstream) for indented JSON.
struct StatsRouter: Sendable {
    /// The route of upstream's document, `/stats` by default.
    let statsRoute: String
    let source: StatsSource

    static let metricsPath = "/metrics"
    static let peersPath = "/peers"
    static let nodePath = "/node"
    static let prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

    func respond(method: HTTPMethod, uri: String) -> StatsResponse {
        let (path, query) = split(uri)
        let paths = [statsRoute, Self.metricsPath, Self.peersPath, Self.nodePath]
        guard paths.contains(path) else {
            return .text(.notFound, "no such path: \(path); try \(paths.joined(separator: ", "))")
        }
        guard method == .GET || method == .HEAD else {
            var response = StatsResponse.text(.methodNotAllowed, "method \(method.rawValue) is not allowed on \(path); use GET")
            response.headers = [("Allow", "GET, HEAD")]
            return response
        }
        let pretty = query.split(separator: "&").contains { $0 == "pretty" || $0.hasPrefix("pretty=") }
        do {
            switch path {
            case Self.metricsPath:
                return StatsResponse(status: .ok, contentType: Self.prometheusContentType,
                                     body: MetricsText.render(source.snapshot(), sync: source.sync()))
            case Self.peersPath:
                return try json(source.snapshot().peers.map(PeerReport.init), pretty: pretty)
            case Self.nodePath:
                return try json(NodeReport(source.snapshot(), sync: source.sync()), pretty: pretty)
            default:
                return try json(StatsReport(source.snapshot()), pretty: pretty)
            }
        } catch {
            return .text(.internalServerError, "cannot encode \(path): \(error)")
        }
    }

    private func json<Value: Encodable>(_ value: Value, pretty: Bool) throws -> StatsResponse {
        StatsResponse(status: .ok, contentType: "application/json", body: try StatsJSON.encode(value, pretty: pretty))
    }

    private func split(_ uri: String) -> (path: String, query: Substring) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, "") }
        return (String(uri[..<mark]), uri[uri.index(after: mark)...])
    }
}
