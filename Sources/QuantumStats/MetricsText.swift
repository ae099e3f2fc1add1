import Prometheus
import QuantumDatastore
import QuantumNode

/// `GET /metrics`: the node's counters in the Prometheus text format.
///
/// Every scrape fills a fresh registry from a snapshot: the node's counters stay the only
/// ones incremented on the data path, and a scrape costs O(peers) off it.
///
/// - Node-wide worker counters: `quantum_<counter>_total` (`quantum_tx_packets_total`, …);
///   every drop reason as `quantum_dropped_packets_total{reason="auth"}` (the reason is the
///   counter's name without `drop_`).
/// - Control-thread counters: `quantum_<counter>_total` (`quantum_handshakes_initiated_total`,
///   `quantum_handshakes_completed_total`, `quantum_handshakes_rejected_total`,
///   `quantum_handshake_timeouts_total`, …).
/// - Per peer, labelled `peer="<private IP>"`: `quantum_peer_{tx,rx}_{packets,bytes}_total`,
///   `quantum_peer_{tx,rx}_dropped_{packets,bytes}_total` and
///   `quantum_peer_dropped_packets_total{peer=…,reason=…}` for the reasons that belong to a
///   peer (auth, replay, spoofed, destination, malformed, no_session); the gauge
///   `quantum_peer_relayed{peer=…}` is 1 while the peer is reached through a relay, else 0.
/// - Gauges: `quantum_peers`, `quantum_sessions` (peers with a session to send with),
///   `quantum_datastore_watch_connected` (0/1) and `quantum_datastore_last_sync_age_seconds`
///   (absent until the first successful sync).
public enum MetricsText {
    /// The text of one scrape.
    public static func render(_ snapshot: NodeSnapshot, sync: NetworkRegistry.SyncStatus) -> [UInt8] {
        let registry = PrometheusCollectorRegistry()
        let drops = counter(nil, "dropped_packets", "Packets dropped, by reason")
        for name in WorkerCounter.allCases {
            let value = Int64(clamping: snapshot.total(name))
            if let reason = reason(name.label) {
                registry.makeCounter(descriptor: drops, labels: [("reason", reason)]).increment(by: value)
            } else {
                registry.makeCounter(descriptor: counter(nil, name.label, "Data-path counter \(name.label), all workers"))
                    .increment(by: value)
            }
        }
        for name in ControlCounter.allCases {
            registry.makeCounter(descriptor: counter(nil, name.label, "Control-thread counter \(name.label)"))
                .increment(by: Int64(clamping: snapshot.control[name] ?? 0))
        }
        let peerDrops = counter("peer", "dropped_packets", "Packets from or to one peer dropped, by reason")
        for peer in snapshot.peers {
            let address = ("peer", peer.privateIP.description)
            for name in PeerCounter.allCases {
                let value = Int64(clamping: peer.counters[name] ?? 0)
                if let reason = reason(name.label) {
                    registry.makeCounter(descriptor: peerDrops, labels: [address, ("reason", reason)]).increment(by: value)
                } else {
                    registry.makeCounter(descriptor: counter("peer", name.label, "Per-peer counter \(name.label)"),
                                         labels: [address]).increment(by: value)
                }
            }
        }
        let relayed = MetricNameDescriptor(namespace: "quantum", subsystem: "peer", metricName: "relayed", unitName: "",
                                           helpText: "1 while the peer is reached through a relay, 0 when directly")
        for peer in snapshot.peers {
            registry.makeGauge(descriptor: relayed, labels: [("peer", peer.privateIP.description)])
                .set(Int64(peer.relay == nil ? 0 : 1))
        }
        registry.makeGauge(descriptor: gauge("peers", "Peers with a route")).set(Int64(snapshot.peers.count))
        registry.makeGauge(descriptor: gauge("sessions", "Peers with a session to send with")).set(Int64(snapshot.liveSessions))
        registry.makeGauge(descriptor: gauge("datastore_watch_connected", "1 while the watch on the map of nodes runs"))
            .set(Int64(sync.watchConnected ? 1 : 0))
        if let age = sync.lastSyncAge {
            registry.makeGauge(descriptor: gauge("datastore_last_sync_age_seconds",
                                                 "Seconds since the map of nodes was last listed or a watch message arrived"))
                .set(NodeReport.seconds(age))
        }
        return registry.emitToBuffer()
    }

    /// `quantum_[subsystem_]<name>_total`.
    private static func counter(_ subsystem: String?, _ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "quantum", subsystem: subsystem, metricName: name, unitName: "total", helpText: help)
    }

    /// `quantum_<name>` (the unit is part of the name where there is one).
    private static func gauge(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "quantum", metricName: name, unitName: "", helpText: help)
    }

    /// The reason of a drop counter (`drop_auth` → `auth`); nil for any other counter.
    private static func reason(_ label: String) -> String? {
        label.hasPrefix("drop_") ? String(label.dropFirst("drop_".count)) : nil
    }
}
