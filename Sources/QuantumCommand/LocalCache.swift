import Foundation
import Logging
import QuantumCore
import QuantumDatastore
import Synchronization

/// The last network configuration and map of nodes this node knew, kept in
/// `<data-dir>/cache.json` so that a restart while etcd is unreachable can bring the
/// network up from it (DESIGN.md §4). Written atomically (temporary file + rename), mode 0600.
public struct LocalCache: Equatable, Sendable {
    /// The network configuration the node ran with.
    public var config: NetworkConfig
    /// The nodes' mappings, each with the create revision of its key.
    public var mappings: [MappingUpdate]

    /// The file name inside the data directory.
    public static let fileName = "cache.json"
    /// The largest cache file read back (a map of some 100,000 nodes).
    static let sizeLimit = 64 << 20

    /// Why the cache file cannot be read or written; the text names the file.
    public struct Failure: Error, Equatable, CustomStringConvertible {
        /// One line naming the file and the problem.
        public let description: String
    }

    /// Keeps only the updates that carry a mapping (without copying `mappings` when they all do).
    public init(config: NetworkConfig, mappings: [MappingUpdate]) {
        self.config = config
        self.mappings = mappings.allSatisfy { $0.mapping != nil } ? mappings : mappings.filter { $0.mapping != nil }
    }

    /// `<dataDir>/cache.json`.
    public static func path(dataDir: String) -> String {
        dataDir.hasSuffix("/") ? dataDir + fileName : dataDir + "/" + fileName
    }

    /// The cache in `dataDir`; nil when there is none, ``Failure`` when it is unreadable or corrupt.
    public static func load(dataDir: String) throws(Failure) -> LocalCache? {
        let filePath = path(dataDir: dataDir)
        let bytes: [UInt8]?
        do { bytes = try FileSystem.read(filePath, limit: sizeLimit) } catch {
            throw Failure(description: "cannot read \(filePath): \(error)")
        }
        guard let bytes else { return nil }
        let file: FileFormat
        do {
            file = try JSONDecoder().decode(FileFormat.self, from: Data(bytes))
        } catch {
            throw Failure(description: "\(filePath) is corrupt: \(describeDecodingError(error))")
        }
        guard file.version == FileFormat.currentVersion else {
            throw Failure(description: "\(filePath) has version \(file.version), expected \(FileFormat.currentVersion)")
        }
        for node in file.nodes where !file.config.network.contains(node.mapping.privateIP) {
            throw Failure(description: "\(filePath) is corrupt: node \(node.mapping.privateIP) is outside network \(file.config.network)")
        }
        return LocalCache(config: file.config, mappings: file.nodes.map {
            MappingUpdate(address: $0.mapping.privateIP, mapping: $0.mapping, createRevision: $0.createRevision)
        })
    }

    /// Writes the cache to `dataDir` atomically, mode 0600.
    public func save(dataDir: String) throws(Failure) {
        let filePath = Self.path(dataDir: dataDir)
        do { try FileSystem.writeAtomically(chunks: EncodedChunks(self), to: filePath, mode: 0o600) } catch {
            throw Failure(description: "cannot write \(filePath): \(error)")
        }
    }

    /// The file's bytes, in chunks of about ``chunkSize``: a ``FileFormat`` written one node
    /// at a time. Encoding the whole file in one call would build a tree of every node's
    /// fields first (some 15 MB for a map of 10,000 nodes), and even the encoded file is
    /// 2.4 MB; this way one chunk and one node are in memory at once.
    struct EncodedChunks: Sequence, IteratorProtocol {
        static let chunkSize = 64 << 10
        private let cache: LocalCache
        private let encoder = JSONEncoder()
        /// The next mapping to write; nil before the header is written.
        private var index: Int?
        private var wroteNode = false
        private var finished = false

        init(_ cache: LocalCache) {
            self.cache = cache
        }

        mutating func next() -> [UInt8]? {
            guard !finished else { return nil }
            var bytes = [UInt8]()
            bytes.reserveCapacity(Self.chunkSize + 1024)
            // Encoding addresses, strings and numbers cannot fail.
            if index == nil {
                let header = try! encoder.encode(FileHeader(version: FileFormat.currentVersion, config: cache.config))
                bytes += header.dropLast() // the header object without its closing brace
                bytes += #","nodes":["#.utf8
                index = 0
            }
            var next = index ?? 0
            while next < cache.mappings.count, bytes.count < Self.chunkSize {
                let update = cache.mappings[next]
                next += 1
                guard let mapping = update.mapping else { continue }
                if wroteNode { bytes.append(UInt8(ascii: ",")) }
                wroteNode = true
                bytes += try! encoder.encode(FileFormat.Node(createRevision: update.createRevision, mapping: mapping))
            }
            index = next
            if next == cache.mappings.count {
                bytes += #"]}"#.utf8
                finished = true
            }
            return bytes
        }
    }

    /// ``FileFormat`` without its nodes: what ``encoded()`` writes before them.
    private struct FileHeader: Encodable {
        var version: Int
        var config: NetworkConfig
    }

    /// The JSON layout of `cache.json`.
    private struct FileFormat: Codable {
        static let currentVersion = 1

        struct Node: Codable {
            var createRevision: Int64
            var mapping: Mapping
        }

        var version: Int
        var config: NetworkConfig
        var nodes: [Node]
    }
}

/// Writes the local cache when the map of nodes changed, at most once per tick, so that a
/// burst of changes costs one write, not one per change.
final class CacheWriter: Sendable {
    private let changed = Atomic<Bool>(false)

    /// Notes that the map changed; the next tick writes it.
    func markChanged() {
        changed.store(true, ordering: .relaxed)
    }

    /// Writes `snapshot()` once now, then after each tick of `ticks` when something changed,
    /// until `ticks` ends or the task is cancelled. A failed write is logged and retried at the next tick.
    func run(ticks: some AsyncSequence<Void, Never>, logger: Logger,
             snapshot: () -> LocalCache, write: (LocalCache) throws -> Void) async {
        save(snapshot(), logger: logger, write: write)
        for await _ in ticks {
            guard changed.exchange(false, ordering: .acquiringAndReleasing) else { continue }
            if !save(snapshot(), logger: logger, write: write) { markChanged() }
        }
    }

    /// Writes one snapshot; false (with a warning) when that failed.
    @discardableResult
    private func save(_ cache: LocalCache, logger: Logger, write: (LocalCache) throws -> Void) -> Bool {
        do {
            try write(cache)
            return true
        } catch {
            logger.warning("could not update the local cache: \(error)")
            return false
        }
    }

    /// One tick every `period` until the task is cancelled.
    static func ticks(every period: Duration) -> AsyncStream<Void> {
        AsyncStream {
            do { try await Task.sleep(for: period) } catch { return nil }
            return ()
        }
    }
}
