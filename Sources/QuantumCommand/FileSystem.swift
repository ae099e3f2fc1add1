import Glibc

/// The few POSIX file operations the command needs, with errors that say what went wrong.
enum FileSystem {
    /// A failed file operation; the text is the system's reason (`Permission denied`).
    struct Failure: Error, CustomStringConvertible {
        let description: String

        static func errno(_ what: String = "") -> Failure {
            let reason = String(cString: strerror(Glibc.errno))
            return Failure(description: what.isEmpty ? reason : "\(what): \(reason)")
        }
    }

    /// The contents of a regular file of at most `limit` bytes; `nil` when it does not exist.
    static func read(_ path: String, limit: Int) throws(Failure) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw .errno()
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .errno() }
        guard info.st_mode & S_IFMT == S_IFREG else { throw Failure(description: "not a regular file") }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .errno()
            }
            if count == 0 { return contents }
            contents += chunk[..<count]
            guard contents.count <= limit else { throw Failure(description: "larger than \(limit) bytes") }
        }
    }

    /// Writes `bytes` to a new temporary file beside `path` with `mode`, flushes it to disk and
    /// renames it over `path`, so that a crash leaves either the old file or the whole new one.
    static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t) throws(Failure) {
        try writeAtomically(chunks: CollectionOfOne(bytes), to: path, mode: mode)
    }

    /// Like ``writeAtomically(_:to:mode:)``, with the file's bytes made one chunk at a time
    /// while it is written (a large file need not be in memory whole).
    static func writeAtomically(chunks: some Sequence<[UInt8]>, to path: String, mode: mode_t) throws(Failure) {
        let directory = parentDirectory(of: path)
        var random = SystemRandomNumberGenerator()
        let temporary = "\(path).tmp-\(getpid())-\(random.next() as UInt32)"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .errno("cannot create \(temporary)") }
        var keepTemporary = false
        defer { if !keepTemporary { unlink(temporary) } }
        do {
            defer { close(fd) }
            guard fchmod(fd, mode) == 0 else { throw Failure.errno("cannot set the mode of \(temporary)") }
            for bytes in chunks {
                var written = 0
                while written < bytes.count {
                    let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
                    if count < 0 {
                        if errno == EINTR { continue }
                        throw Failure.errno("cannot write \(temporary)")
                    }
                    written += count
                }
            }
            guard fsync(fd) == 0 else { throw Failure.errno("cannot flush \(temporary)") }
        }
        guard rename(temporary, path) == 0 else { throw .errno("cannot rename \(temporary) to \(path)") }
        keepTemporary = true
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// The permission bits of `path`, whether it is a directory, and its owner; `nil` when it does not exist.
    static func status(_ path: String) throws(Failure) -> (mode: mode_t, isDirectory: Bool, owner: uid_t)? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw .errno()
        }
        return (info.st_mode & 0o7777, info.st_mode & S_IFMT == S_IFDIR, info.st_uid)
    }

    /// Creates `path` and any missing parents; the last component gets `mode` exactly.
    static func makeDirectory(_ path: String, mode: mode_t) throws(Failure) {
        let parent = parentDirectory(of: path)
        if parent != path, try status(parent) == nil {
            try makeDirectory(parent, mode: 0o755)
        }
        guard mkdir(path, mode) == 0 || errno == EEXIST else { throw .errno("cannot create directory \(path)") }
        try changeMode(path, to: mode)
    }

    /// Sets the permission bits of `path`.
    static func changeMode(_ path: String, to mode: mode_t) throws(Failure) {
        guard chmod(path, mode) == 0 else { throw .errno("cannot change the mode of \(path)") }
    }

    /// `/a/b` for `/a/b/c`, `.` for `c`, `/` for `/c`.
    static func parentDirectory(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        let parent = trimmed[..<slash]
        return parent.isEmpty ? "/" : String(parent)
    }
}
