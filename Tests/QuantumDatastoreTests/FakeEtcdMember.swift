import NIOCore
import NIOHTTP1
import NIOPosix
import QuantumDatastore
import XCTest

/// A test case that starts fake members (``FakeEtcdMember``) and real etcd servers and
/// stops them, and the clients it made, after each test.
class EtcdMembersTestCase: XCTestCase {
    var server: EtcdServer?
    var fakes: [FakeEtcdMember] = []
    var clients: [EtcdClient] = []
    let log = LogCapture()

    override func tearDown() async throws {
        for client in clients { try? await client.shutdown() }
        for fake in fakes { try? await fake.stop() }
        server?.stop()
    }

    func fake(_ reply: @escaping @Sendable (String) -> FakeEtcdMember.Reply) async throws -> FakeEtcdMember {
        let member = try await FakeEtcdMember(reply: reply)
        fakes.append(member)
        return member
    }

    func etcd() async throws -> EtcdServer {
        let server = try EtcdServer()
        self.server = server
        try await server.waitUntilReady(logger: log.logger)
        return server
    }
}

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
    /// Bodies of the requests received, in order.
    let bodies = Box<[String]>([])

    var endpoint: String { "127.0.0.1:\(channel.localAddress?.port ?? 0)" }

    init(reply: @escaping @Sendable (String) -> Reply) async throws {
        let requests = self.requests, bodies = self.bodies
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(reply: reply, requests: requests, bodies: bodies))
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
        let bodies: Box<[String]>
        var path = ""
        var body = ""
        var ticker: RepeatedTask?

        init(reply: @escaping @Sendable (String) -> Reply, requests: Box<[String]>, bodies: Box<[String]>) {
            self.reply = reply
            self.requests = requests
            self.bodies = bodies
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                path = head.uri
                body = ""
                requests.update { $0.append(head.uri) }
            case .body(let part):
                body += String(buffer: part)
            case .end:
                let body = self.body
                bodies.update { $0.append(body) }
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
