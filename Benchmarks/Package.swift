// swift-tools-version:6.1
// Micro-benchmarks of quantum's data path (ordo-one/benchmark). A package of its own so that
// the main package's build and CI (.ci/run) never build it. Run from this directory:
//   swift package --allow-writing-to-package-directory benchmark
import Foundation
import PackageDescription

/// SwiftPM names a path dependency after its directory: the repository's checkout, whatever it is called.
let mainPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent.lowercased()

let package = Package(
    name: "QuantumBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        // The trait replaces the package's default traits: its malloc interposer counts
        // allocations (mallocCountTotal) without the Linux ARC runtime interposer.
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "DataPath",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "QuantumEngine", package: mainPackage),
            ],
            path: "Benchmarks/DataPath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
