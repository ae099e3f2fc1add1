import AsyncHTTPClient
import Foundation
import Glibc
import NIOCore
import NIOPosix

/// What `quantum status` reads from a running daemon's stats endpoint: `/node` and `/peers`.
public struct StatusReport: Codable, Sendable, Equatable {
    public var node: NodeReport
    public var peers: [PeerReport]
}

/// Why `quantum status` has nothing to show, in one line for the operator.
public struct StatusError: Error, CustomStringConvertible, Equatable {
    public let description: String
}

/// Reads a ``StatusReport`` over HTTP (AsyncHTTPClient).
public enum StatusClient {
    /// Fetches `/node` and `/peers` from `host`:`port`.
    /// - Throws: ``StatusError``, "quantum is not running: …" when nothing listens there.
    public static func fetch(host: String, port: Int, timeout: Duration = .seconds(5)) async throws -> StatusReport {
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        // Refused connections surface at once; AsyncHTTPClient would retry them until the deadline.
        do {
            let probe = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.milliseconds(Int64(timeout.components.seconds * 1000)))
                .connect(host: host, port: port).get()
            try? await probe.close()
        } catch let error as NIOConnectionError where !error.connectionErrors.isEmpty && error.connectionErrors.allSatisfy({
            ($0.error as? IOError)?.errnoCode == ECONNREFUSED
        }) {
            throw StatusError(description: "quantum is not running: nothing listens on \(authority) (stats endpoint)")
        } catch {
            throw StatusError(description: "cannot reach quantum's stats endpoint at \(authority): \(error)")
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let node: NodeReport = try await get("http://\(authority)/node", client: client, timeout: timeout)
            let peers: [PeerReport] = try await get("http://\(authority)/peers", client: client, timeout: timeout)
            try await client.shutdown()
            return StatusReport(node: node, peers: peers)
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private static func get<Document: Decodable>(_ url: String, client: HTTPClient, timeout: Duration) async throws -> Document {
        let body: ByteBuffer
        do {
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .nanoseconds(
                Int64(timeout.components.seconds) * 1_000_000_000))
            body = try await response.body.collect(upTo: 16 << 20)
            guard response.status == .ok else {
                throw StatusError(description: "\(url) answered \(response.status.code) \(response.status.reasonPhrase): "
                    + String(buffer: body).trimmingCharacters(in: .whitespacesAndNewlines))
            }
        } catch let error as StatusError {
            throw error
        } catch {
            throw StatusError(description: "cannot read \(url): \(error)")
        }
        do {
            return try JSONDecoder().decode(Document.self, from: Data(body.readableBytesView))
        } catch {
            throw StatusError(description: "\(url) did not answer a quantum document: \(error)")
        }
    }
}

/// `quantum status` as a table, like `wg show` / `tailscale status`.
public enum StatusTable {
    public static func render(_ report: StatusReport) -> String {
        let node = report.node
        let sync = node.datastore.watchConnected ? "watch connected" : "watch disconnected"
        let age = node.datastore.lastSyncSecondsAgo.map { ", last sync \(duration($0)) ago" } ?? ", never synced"
        var lines = [
            "node \(node.privateIP)  public key \(node.publicKey)",
            "  peers \(node.peers), sessions \(node.sessions), datastore \(sync)\(age)",
            "  tx \(traffic(node.tx))  rx \(traffic(node.rx))",
        ]
        guard !report.peers.isEmpty else { return (lines + ["", "no peers"]).joined(separator: "\n") + "\n" }
        let header = ["PEER", "ENDPOINT", "SESSION", "HANDSHAKE", "TX", "RX", "PATH", "PUBLIC KEY"]
        let rows = report.peers.map { peer in
            [peer.privateIP, peer.endpoint ?? "-", peer.session,
             peer.lastHandshakeSecondsAgo.map { "\(duration($0)) ago" } ?? "-",
             traffic(peer.tx), traffic(peer.rx), peer.path, peer.publicKey]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        lines.append("")
        for row in [header] + rows {
            lines.append(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `12 pkts/1.5 KiB`, with `(3 dropped)` when any were.
    static func traffic(_ counts: TrafficCounts) -> String {
        let dropped = counts.droppedPackets > 0 ? " (\(counts.droppedPackets) dropped)" : ""
        return "\(counts.packets) pkts/\(bytes(counts.bytes))\(dropped)"
    }

    /// Bytes in binary units: `512 B`, `1.5 KiB`, `3.2 GiB`.
    static func bytes(_ count: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : "\(String(format: "%.1f", value)) \(units[unit])"
    }

    /// `45s`, `12m3s`, `2h5m`.
    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded(.down))
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(total % 60)s" }
        return "\(total / 3600)h\(total % 3600 / 60)m"
    }
}
