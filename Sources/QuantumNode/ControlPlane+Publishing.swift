import QuantumCore

// Publishing: the snapshot the workers look up, rebuilt from the peers.
extension ControlPlane {
    /// Builds and publishes a new `ForwardingTable` from every peer (O(peers + floating
    /// IPs); callers rate-limit it under mapping churn).
    ///
    /// A floating IP held by a peer routes to that peer's session and is accepted as an
    /// inner source from it alone; one held here is accepted as a destination. This node's
    /// gateway peer (if any) takes every destination outside the network and may send from
    /// any address outside it.
    func publish() {
        var routes: [IPv4Address: ForwardingTable.Route] = .init(minimumCapacity: peers.count + floatingHolders.count)
        var inbound: [UInt32: ForwardingTable.Inbound] = .init(minimumCapacity: owners.count)
        var floatingByHolder: [IPv4Address: Set<IPv4Address>] = [:]
        var localFloating: Set<IPv4Address> = []
        for (floating, holder) in floatingHolders {
            if holder == localIP {
                localFloating.insert(floating)
            } else if peers[holder] != nil {
                floatingByHolder[holder, default: []].insert(floating)
            }
        }
        for (address, peer) in peers {
            let compression = compression && peer.mapping.plugins.contains(Plugin.compression.rawValue)
            let relayHop = relayEndpoint(of: peer)
            let route = ForwardingTable.Route(privateIP: address, endpoint: peer.endpoint, session: peer.current,
                                              signals: peer.signals, compression: compression, relayEndpoint: relayHop)
            routes[address] = route
            let floating = floatingByHolder[address] ?? []
            for held in floating { routes[held] = route }
            let sources = ForwardingTable.InnerSources(floating: floating, outsideNetwork: address == gateway)
            for session in peer.sessions {
                inbound[session.localIndex] = .init(session: session, privateIP: address, endpoint: peer.endpoint,
                                                    signals: peer.signals, confirmed: session !== peer.next,
                                                    compression: compression, sources: sources, relayEndpoint: relayHop)
            }
        }
        counters.add(.tablesPublished)
        if peers.count != publishedPeerCount {
            logger.debug("forwarding table: \(peers.count) peers (was \(publishedPeerCount))")
            publishedPeerCount = peers.count
        }
        tables.publish(ForwardingTable(routes: routes, inbound: inbound, network: network, localFloating: localFloating,
                                       servesGateway: servesGateway, gatewayRoute: gateway.flatMap { routes[$0] },
                                       offersRelay: offersRelay))
    }
}
