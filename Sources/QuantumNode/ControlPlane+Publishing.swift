import QuantumCore

// Publishing: the snapshot the workers look up, rebuilt from the peers.
extension ControlPlane {
    /// Builds and publishes a new `ForwardingTable` from every peer (O(peers); callers
    /// rate-limit it under mapping churn).
    func publish() {
        var routes: [IPv4Address: ForwardingTable.Route] = .init(minimumCapacity: peers.count)
        var inbound: [UInt32: ForwardingTable.Inbound] = .init(minimumCapacity: owners.count)
        for (address, peer) in peers {
            let compression = compression && peer.mapping.plugins.contains(Plugin.compression.rawValue)
            routes[address] = .init(privateIP: address, endpoint: peer.endpoint, session: peer.current, signals: peer.signals,
                                    compression: compression)
            for session in peer.sessions {
                inbound[session.localIndex] = .init(session: session, privateIP: address, endpoint: peer.endpoint,
                                                    signals: peer.signals, confirmed: session !== peer.next,
                                                    compression: compression)
            }
        }
        tables.publish(ForwardingTable(routes: routes, inbound: inbound))
        publishDirectory()
    }
}
