extension Daemon {
    /// How often the address lease is renewed and the node's mapping and the network
    /// configuration are checked (and re-published if gone): `--datastore-refresh-interval`,
    /// or `--datastore-sync-interval` when that is shorter, so that a wiped prefix is
    /// re-registered within one sync interval, well inside the two sync intervals peers keep
    /// a vanished mapping's links. The configuration keeps the refresh interval below
    /// `--network-lease-time`, but the network stored in etcd wins over that flag and its
    /// lease may be shorter still: then a third of it is used, with a warning to log rather
    /// than a lease left to lapse.
    static func refreshInterval(_ configuration: Configuration,
                                leaseTimeSeconds: Int64) -> (interval: Duration, warning: String?) {
        let interval = min(configuration.datastoreRefreshInterval, configuration.datastoreSyncInterval)
        let lease = Duration.seconds(leaseTimeSeconds)
        guard interval >= lease else { return (interval, nil) }
        let fallback = Duration.seconds(max(leaseTimeSeconds / 3, 1))
        return (fallback, """
            --datastore-refresh-interval \(configuration.datastoreRefreshInterval) is not shorter than the lease time \
            of the network stored in etcd (\(lease)); renewing every \(fallback) instead
            """)
    }
}
