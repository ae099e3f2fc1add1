import Foundation
import QuantumCore
@testable import QuantumDatastore

/// A node mapping as read from its etcd key; a mapping that parses must survive its own
/// JSON unchanged (what a node writes, every other node reads back).
struct MappingHarness: FuzzHarness {
    func seeds() -> [[UInt8]] {
        [FuzzMappings.mapping(IPv4Address("10.99.0.2")!).json(),
         Mapping(machineID: "b", privateIP: IPv4Address("10.99.0.3")!, ipv4: nil, ipv6: IPv6Address("fd00::3"), port: 1,
                 publicKey: FuzzKeys.initiator.publicKey, plugins: ["compression"], floating: [IPv4Address("10.99.200.1")!],
                 gatewayIP: IPv4Address("10.99.0.1"), certificate: "Y2VydA==").json()]
    }

    func run(_ input: UnsafeRawBufferPointer) {
        guard let mapping = try? Mapping.parse(json: Array(input)) else { return }
        precondition((try? Mapping.parse(json: mapping.json())) == mapping, "a mapping changed through its own JSON")
    }
}

/// The network configuration as read from `<prefix>/config`: parsed and validated; a valid
/// one survives its own JSON and answers the address questions nodes ask it.
struct NetworkConfigHarness: FuzzHarness {
    func seeds() -> [[UInt8]] {
        [FuzzMappings.config.json(),
         try! NetworkConfig(network: IPv4Prefix(parsing: "10.0.0.0/30"), staticRange: IPv4Prefix(parsing: "10.0.0.0/31"),
                            floatingRange: IPv4Prefix(parsing: "10.0.0.2/31"), leaseTimeSeconds: 10).json()]
    }

    func run(_ input: UnsafeRawBufferPointer) {
        guard let config = try? NetworkConfig.parse(json: Array(input)) else { return }
        precondition((try? NetworkConfig.parse(json: config.json())) == config, "a configuration changed through its own JSON")
        let address = config.network.network
        _ = config.isDynamicCandidate(address)
        _ = config.isStaticCandidate(address)
        _ = config.floatingIPProblem(address)
        _ = Array(config.dynamicCandidates(excluding: [address]).prefix(4))
    }
}

/// A `/v3/kv/range` answer of the etcd JSON gateway listing the node keys, as the
/// registry reads it: every key/value decoded, then the node map rebuilt from them.
struct EtcdRangeHarness: FuzzHarness {
    private let registry = NetworkRegistry(store: InMemoryDatastore(), logger: FuzzNode.quiet)

    func seeds() -> [[UInt8]] {
        let kvs = [FuzzMappings.kv("10.99.0.2", revision: 5), FuzzMappings.kv("10.99.0.3", revision: 6),
                   #"{"key":"L3F1YW50dW0vbm9kZXMvbm9wZQ==","create_revision":"7","mod_revision":"7","version":"1","value":"e30="}"#]
        return [Array(#"{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"8","raft_term":"2"},"kvs":[\#(kvs.joined(separator: ","))],"count":"3"}"#.utf8),
                Array(#"{"header":{"revision":"3"}}"#.utf8)]
    }

    func run(_ input: UnsafeRawBufferPointer) {
        guard let answer = try? JSONDecoder().decode(EtcdWire.RangeResponse.self, from: Data(input)),
              let items = try? (answer.kvs ?? []).map({ try $0.keyValue() }),
              let revision = try? EtcdWire.revision(answer.header?.revision, "header.revision")
        else { return }
        for item in items where item.key == registry.configKey {
            _ = try? NetworkConfig.parse(json: item.value)
        }
        registry.resync(items, network: FuzzNode.network, onChange: { _ in })
        _ = revision + 1  // where PrefixFollower starts its watch
    }
}

/// A `/v3/watch` stream of the etcd JSON gateway (one JSON message a line), read as the
/// etcd client reads it — events, progress notifications, cancellation — with the events
/// applied to the registry's node map.
struct EtcdWatchHarness: FuzzHarness {
    private let registry = NetworkRegistry(store: InMemoryDatastore(), logger: FuzzNode.quiet)

    func seeds() -> [[UInt8]] {
        let created = #"{"result":{"header":{"cluster_id":"1","member_id":"2","revision":"8","raft_term":"2"},"created":true}}"#
        let put = #"{"result":{"header":{"revision":"9"},"events":[{"kv":\#(FuzzMappings.kv("10.99.0.4", revision: 9))}]}}"#
        let delete = #"{"result":{"header":{"revision":"10"},"events":[{"type":"DELETE","kv":{"key":"L3F1YW50dW0vbm9kZXMvMTAuOTkuMC4y","mod_revision":"10"}}]}}"#
        let progress = #"{"result":{"header":{"revision":"12"}}}"#
        let canceled = #"{"result":{"header":{"revision":"12"},"canceled":true,"compact_revision":"4","cancel_reason":"mvcc: required revision has been compacted"}}"#
        let failed = #"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}"#
        return [Array([created, put, delete, progress].joined(separator: "\n").utf8), Array((canceled + "\n").utf8),
                Array(failed.utf8)]
    }

    func run(_ input: UnsafeRawBufferPointer) {
        let progress = EtcdClient.WatchProgress(nextRevision: 0)
        for line in input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            guard let message = try? JSONDecoder().decode(EtcdWire.WatchMessage.self, from: Data(line)),
                  message.error == nil
            else { return }
            guard let result = message.result else { continue }
            if result.canceled == true {
                _ = try? EtcdWire.revision(result.compactRevision, "compact_revision")
                return
            }
            guard let events = try? (result.events ?? []).map({ event -> WatchEvent in
                let kv = try event.kv.keyValue()
                return event.type == "DELETE" ? .delete(key: kv.key, revision: kv.modRevision) : .put(kv)
            }) else { return }
            if let last = events.last {
                progress.delivered(upTo: last.revision)
                registry.apply(events, network: FuzzNode.network, onChange: { _ in })
            } else if let revision = try? EtcdWire.revision(result.header?.revision, "header.revision"), revision > 0 {
                progress.delivered(upTo: revision)
            }
        }
    }
}

/// Stored values made by quantum's own encoders, for the datastore seeds.
enum FuzzMappings {
    static let config = try! NetworkConfig(
        network: IPv4Prefix(parsing: "10.99.0.0/16"), staticRange: IPv4Prefix(parsing: "10.99.0.0/23"),
        floatingRange: IPv4Prefix(parsing: "10.99.2.0/23"), leaseTimeSeconds: 300)

    static func mapping(_ address: IPv4Address) -> Mapping {
        Mapping(machineID: String(repeating: "ab", count: 16), privateIP: address, ipv4: IPv4Address("192.0.2.2"),
                ipv6: nil, port: 1099, publicKey: FuzzKeys.initiator.publicKey)
    }

    /// One key/value of `<prefix>/nodes/<address>` as the etcd gateway writes it.
    static func kv(_ address: String, revision: Int) -> String {
        let key = EtcdWire.base64("/quantum/nodes/\(address)")
        let value = EtcdWire.base64(mapping(IPv4Address(address)!).json())
        return #"{"key":"\#(key)","create_revision":"\#(revision)","mod_revision":"\#(revision)","version":"1","value":"\#(value)","lease":"7587883400563519001"}"#
    }
}
