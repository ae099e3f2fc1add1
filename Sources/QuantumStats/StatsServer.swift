import Glibc
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The HTTP stats endpoint (swift-nio): one listening socket on `--stats-address`:`--stats-port`,
/// bound with SO_REUSEADDR and SO_REUSEPORT so that a new daemon can bind while the old one
/// still serves (rolling restart). Requests are answered by ``StatsRouter``.
public final class StatsServer: Sendable {
    private let channel: any Channel

    /// The port the endpoint listens on (the one asked for, or the kernel's pick for 0).
    public let port: Int

    private init(channel: any Channel) {
        self.channel = channel
        port = channel.localAddress?.port ?? 0
    }

    /// Binds and starts serving.
    /// - Throws: the bind error (address in use without SO_REUSEPORT, address not local, …).
    public static func start(host: String, port: Int, route: String, source: StatsSource,
                             logger: Logger) async throws -> StatsServer {
        let router = StatsRouter(statsRoute: route, source: source)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.Types.SocketOption(level: .socket, name: .init(rawValue: SO_REUSEPORT)),
                                 value: 1)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(StatsHTTPHandler(router: router, logger: logger))
                }
            }
            .bind(host: host, port: port)
            .get()
        return StatsServer(channel: channel)
    }

    /// Stops listening (connections in progress finish on their own); returns at once.
    public func stop() {
        channel.close(promise: nil)
    }
}

/// Answers each request of one connection once its end arrived; a body, if any, is ignored.
private final class StatsHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: `request` is touched only on the connection's event loop.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let router: StatsRouter
    private let logger: Logger
    private var request: HTTPRequestHead?

    init(router: StatsRouter, logger: Logger) {
        self.router = router
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            let response = router.respond(method: head.method, uri: head.uri)
            logger.trace("stats endpoint: \(head.method) \(head.uri) → \(response.status.code)")
            var headers = HTTPHeaders([("Content-Type", response.contentType),
                                       ("Content-Length", String(response.body.count))])
            headers.add(contentsOf: response.headers)
            if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status,
                                                                 headers: headers))), promise: nil)
            if head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
            }
            let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !head.isKeepAlive {
                let channel = context.channel
                written.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}
