// swift-tools-version:6.0
// quantum: an end-to-end encrypted, WAN-oriented software-defined network.
// One target per layer (DESIGN.md §2); dependencies point from the executable down to Core.
import PackageDescription

let package = Package(
    name: "quantum",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "quantum", targets: ["quantum"]),
        // The engine's layers as a library, for the micro-benchmarks in Benchmarks/ (their own package).
        .library(name: "QuantumEngine", targets: ["QuantumCore", "QuantumCrypto", "QuantumNode"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.100.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
    ],
    targets: [
        // Core: value types, address allocation, packet header views. No I/O.
        .target(name: "QuantumCore"),

        // Crypto: identity keys, Noise IK handshake, in-place AEAD, replay window. No I/O.
        .target(
            name: "CQuantumCrypto",
            linkerSettings: [.linkedLibrary("crypto")]
        ),
        .target(
            name: "QuantumCrypto",
            dependencies: [
                "QuantumCore", "CQuantumCrypto",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),

        // Datastore: the Datastore protocol, etcd v3 client (JSON gateway), registry and cache.
        .target(
            name: "QuantumDatastore",
            dependencies: [
                "QuantumCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),

        // Device / Transport: TUN queues, UDP sockets (batched), interface addresses and routes.
        .target(name: "CQuantumLinux", cSettings: [.define("_GNU_SOURCE")]),
        .target(name: "QuantumDevice", dependencies: ["QuantumCore", "CQuantumLinux"]),

        // LZ4 from the system (Debian liblz4-dev), for the compression plugin.
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),

        // Node: peer table, router, pipelines, handshake driver, timers, counters.
        .target(
            name: "QuantumNode",
            dependencies: [
                "QuantumCore", "QuantumCrypto", "QuantumDevice", "QuantumDatastore", "CLZ4",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // API: the stats endpoint (/stats JSON, Prometheus /metrics, /peers) and its client (`quantum status`).
        .target(
            name: "QuantumStats",
            dependencies: [
                "QuantumCore", "QuantumNode", "QuantumDatastore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),

        // The command: options, configuration hierarchy, identity files, lifecycle.
        .target(
            name: "QuantumCommand",
            dependencies: [
                "QuantumCore", "QuantumCrypto", "QuantumDevice", "QuantumDatastore", "QuantumNode", "QuantumStats",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Linked by lld (README, "Memory"): its ~120,000 relative relocations packed (DT_RELR, glibc
        // >= 2.36) instead of a 2.9 MB table the loader reads at every start; none of its 33,000
        // symbols exported, as nothing loads them; and the functions a node runs from start to idle
        // placed together (symbol-order.txt, made by scripts/symbol-order.sh), since the kernel keeps
        // a 64 KB window of code resident around every page that ran once.
        .executableTarget(name: "quantum", dependencies: ["QuantumCommand"], exclude: ["symbol-order.txt"],
                          linkerSettings: [
            .unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                          "-Xlinker", "--no-export-dynamic",
                          "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/Sources/quantum/symbol-order.txt",
                          "-Xlinker", "--no-warn-symbol-ordering"]),
        ]),

        // Fuzzing (scripts/fuzz.sh): the harnesses, and one binary that is a libFuzzer target when built
        // with -sanitize=fuzzer -DFUZZING (in .build-fuzz) and a corpus replayer otherwise. The harnesses
        // reach internal parsers through @testable imports: debug builds only (`--product quantum` for release).
        .target(name: "QuantumFuzzTargets", dependencies: [
            "QuantumCore", "QuantumCrypto", "QuantumDatastore", "QuantumDevice", "QuantumNode", "QuantumCommand",
            .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
        ]),
        .systemLibrary(name: "CLibFuzzer"),
        .executableTarget(name: "quantum-fuzz", dependencies: ["QuantumFuzzTargets", "CLibFuzzer"]),

        .testTarget(name: "QuantumCoreTests", dependencies: ["QuantumCore"]),
        .testTarget(name: "QuantumDeviceTests", dependencies: ["QuantumDevice", "QuantumCore"]),
        .testTarget(name: "QuantumCryptoTests", dependencies: ["QuantumCrypto", "QuantumCore"]),
        .testTarget(name: "QuantumDatastoreTests", dependencies: [
            "QuantumDatastore", "QuantumCore", .product(name: "Logging", package: "swift-log"),
            // A fake etcd member (HTTP on loopback) for fail-over and stall tests.
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // Counts the heap allocations of data-path threads (malloc interposer; test binary only).
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),
        .testTarget(name: "QuantumNodeTests", dependencies: [
            "QuantumNode", "QuantumCrypto", "QuantumCore", "QuantumDevice", "QuantumDatastore", "CAllocationCounter",
        ]),
        .testTarget(name: "QuantumStatsTests", dependencies: [
            "QuantumStats", "QuantumNode", "QuantumCore", "QuantumDatastore",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "QuantumCommandTests", dependencies: ["QuantumCommand", "QuantumCore"]),
        .testTarget(name: "QuantumFuzzTargetsTests", dependencies: ["QuantumFuzzTargets"]),
    ]
)
