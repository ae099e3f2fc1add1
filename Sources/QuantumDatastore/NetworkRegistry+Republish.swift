import QuantumCore

extension NetworkRegistry {
    /// Stores `mapping` as this node's mapping under `lease`, when the node key still carries
    /// that lease and a different value (e.g. new reflexive endpoints). A key that is gone or
    /// under another lease is left to the keep-alive, which claims the address again.
    /// - Returns: whether the stored mapping is now `mapping`.
    public func republish(_ mapping: Mapping, lease: Lease) async throws -> Bool {
        guard let stored = try await store.get(lease.key), stored.lease == lease.id else { return false }
        let value = mapping.json()
        guard stored.value != value else { return true }
        return try await store.replace(lease.key, value: value, ifModRevision: stored.modRevision, lease: lease.id)
    }
}
