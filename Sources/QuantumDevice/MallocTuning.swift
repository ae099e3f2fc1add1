import CQuantumLinux

/// glibc malloc settings for the daemon, chosen by measurement (a node starting against a map
/// of 10,000 nodes, debug build: peak resident 84 MB with glibc's defaults, 76.5 MB with one
/// arena, 73 MB with one arena and a fixed mmap threshold).
///
/// - One arena: glibc gives each thread that meets contention an arena of its own, and memory
///   freed in one is never reused by another; the map is decoded on the concurrency pool's
///   threads and applied on the control thread, so each kept its own high-water mark. The
///   workers allocate nothing per packet, so they never wait on the shared arena.
/// - A fixed mmap threshold of 256 KiB: a large block (an etcd listing of the whole map, a
///   table of 10,000 routes) gets its own mapping and goes back to the kernel when freed. By
///   default glibc raises the threshold to the size of each such block freed, after which the
///   next ones are carved from the heap and stay resident.
public enum MallocTuning {
    static let arenas: Int32 = 1
    static let mmapThreshold: Int32 = 256 << 10

    /// Applies the settings; call before the daemon starts its threads. Returns false if
    /// glibc refused one (the daemon runs on with the defaults then).
    @discardableResult
    public static func apply() -> Bool {
        mallopt(M_ARENA_MAX, arenas) == 1 && mallopt(M_MMAP_THRESHOLD, mmapThreshold) == 1
    }
}
