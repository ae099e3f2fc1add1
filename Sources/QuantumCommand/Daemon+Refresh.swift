extension Daemon {
    /// How often the address lease is renewed: `--datastore-refresh-interval`, which the
    /// configuration already keeps below `--network-lease-time`. The network stored in etcd
    /// wins over that flag, so its lease may be shorter still: then a third of it is used,
    /// with a warning to log rather than a lease left to lapse.
    static func refreshInterval(_ configuration: Configuration,
                                leaseTimeSeconds: Int64) -> (interval: Duration, warning: String?) {
        let lease = Duration.seconds(leaseTimeSeconds)
        guard configuration.datastoreRefreshInterval >= lease else { return (configuration.datastoreRefreshInterval, nil) }
        let fallback = Duration.seconds(max(leaseTimeSeconds / 3, 1))
        return (fallback, """
            --datastore-refresh-interval \(configuration.datastoreRefreshInterval) is not shorter than the lease time \
            of the network stored in etcd (\(lease)); renewing every \(fallback) instead
            """)
    }
}
