// quantum-fuzz: the fuzz targets of Sources/QuantumFuzzTargets behind one binary.
//
// Built by scripts/fuzz.sh with `-sanitize=fuzzer,address -DFUZZING`, it is a libFuzzer
// binary (libFuzzer's driver and options; the target named by QUANTUM_FUZZ_TARGET). In an
// ordinary build it replays inputs and writes the seed corpus, without libFuzzer.
import Glibc
import QuantumFuzzTargets

/// Writes one line to standard error.
func complain(_ message: String) {
    var line = "quantum-fuzz: \(message)\n"
    line.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
}

#if FUZZING
import CLibFuzzer

/// The selected target's harness; libFuzzer calls in from one thread only.
nonisolated(unsafe) private var harness: (any FuzzHarness)?

/// The entry point (SwiftPM links `main` to `<module>_main`): selects the target named by
/// QUANTUM_FUZZ_TARGET and hands the command line to libFuzzer's driver.
@_cdecl("quantum_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    let name = getenv("QUANTUM_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = FuzzTargets.named(name) else {
        let names = FuzzTargets.all.map(\.name).joined(separator: " ")
        complain("QUANTUM_FUZZ_TARGET is '\(name)'; it must name one of: \(names)")
        return 2
    }
    harness = target.make()
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzerTestOneInput(data, size) }
}

/// Runs one input (libFuzzer's driver also refers to this name).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    harness?.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#else
/// The ordinary build: `quantum-fuzz TARGET FILE...` runs each file through TARGET once
/// (reproducing a crash without the sanitizers); `quantum-fuzz --write-seeds DIR` writes
/// every target's seeds as DIR/<target>/seed-<n>; `quantum-fuzz --list` names the targets.
@main
struct FuzzReplay {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch arguments.first {
        case "--list":
            for target in FuzzTargets.all { print("\(target.name)\t\(target.summary)") }
        case "--write-seeds" where arguments.count == 2:
            for target in FuzzTargets.all {
                let directory = "\(arguments[1])/\(target.name)"
                makeDirectories(directory)
                for (index, seed) in target.make().seeds().enumerated() {
                    store(seed, to: "\(directory)/seed-\(index)")
                }
            }
        case let name? where arguments.count >= 2:
            guard let target = FuzzTargets.named(name) else { fail("no fuzz target '\(name)' (see --list)") }
            let harness = target.make()
            for path in arguments.dropFirst() {
                guard let input = read(path) else { fail("cannot read \(path)") }
                input.withUnsafeBytes { harness.run($0) }
                print("\(name): \(path): \(input.count) bytes, no crash")
            }
        default:
            fail("usage: quantum-fuzz TARGET FILE... | --write-seeds DIR | --list")
        }
    }

    private static func fail(_ message: String) -> Never {
        complain(message)
        exit(2)
    }

    /// `mkdir -p`.
    private static func makeDirectories(_ path: String) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component + "/"
            guard mkdir(prefix, 0o755) == 0 || errno == EEXIST else { fail("cannot create \(prefix)") }
        }
    }

    private static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            bytes += chunk[0..<count]
            if count < chunk.count { return ferror(file) == 0 ? bytes : nil }
        }
    }

    private static func store(_ bytes: [UInt8], to path: String) {
        guard let file = fopen(path, "wb") else { fail("cannot create \(path)") }
        defer { fclose(file) }
        guard fwrite(bytes, 1, bytes.count, file) == bytes.count else { fail("cannot write \(path)") }
    }
}
#endif
