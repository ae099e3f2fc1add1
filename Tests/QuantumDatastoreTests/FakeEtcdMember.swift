import NIOCore
import NIOHTTP1
import NIOPosix

/// An HTTP server on 127.0.0.1 that plays a sick etcd member: every request is answered
/// according to `reply(path)`, and the paths asked for are recorded.
final class FakeEtcdMember: Sendable {
    /// How the member answers one request.
    enum Reply: Sendable {
        /// A complete answer with this status and body.
        case status(Int, String)
        /// A watch that is created and then never sends anything again (a black-holed member).
        case watchCreatedThenSilent
        /// A watch that is created and then sends only progress notifications, one every `period`.
        case watchProgressEvery(TimeAmount)
        /// No answer at all.
        case silence
    }

    private let channel: any Channel
    /// Paths of the requests received, in order.
    let requests = Box<[String]>([])

    var endpoint: String { "127.0.0.1:\(channel.localAddress?.port ?? 0)" }

    init(reply: @escaping @Sendable (String) -> Reply) async throws {
        let requests = self.requests
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(reply: reply, requests: requests))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    /// How often `path` was asked for.
    func count(_ path: String) -> Int {
        requests.get().filter { $0 == path }.count
    }

    func stop() async throws {
        try await channel.close()
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        // @unchecked: used only on its channel's event loop.
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let reply: @Sendable (String) -> Reply
        let requests: Box<[String]>
        var path = ""
        var ticker: RepeatedTask?

        init(reply: @escaping @Sendable (String) -> Reply, requests: Box<[String]>) {
            self.reply = reply
            self.requests = requests
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                path = head.uri
                requests.update { $0.append(head.uri) }
            case .body:
                break
            case .end:
                respond(context: context)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            ticker?.cancel()
            context.fireChannelInactive()
        }

        private func respond(context: ChannelHandlerContext) {
            switch reply(path) {
            case .status(let code, let body):
                var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", "\(body.utf8.count)")])
                headers.add(name: "Connection", value: "keep-alive")
                context.write(wrapOutboundOut(.head(.init(version: .http1_1, status: .init(statusCode: code), headers: headers))),
                              promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            case .watchCreatedThenSilent:
                startWatch(context: context)
            case .watchProgressEvery(let period):
                startWatch(context: context)
                let line = #"{"result":{"header":{"revision":"1"}}}"# + "\n"
                ticker = context.eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { [weak self] _ in
                    guard let self else { return }
                    context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: line)))), promise: nil)
                }
            case .silence:
                break
            }
        }

        private func startWatch(context: ChannelHandlerContext) {
            let headers = HTTPHeaders([("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")])
            context.write(wrapOutboundOut(.head(.init(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            let created = #"{"result":{"header":{"revision":"1"},"created":true}}"# + "\n"
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: created)))), promise: nil)
        }
    }
}
