import Foundation
import QuantumFuzzTargets
import XCTest

/// The committed seed corpus (Fuzz/corpus/<target>/) as a regression suite: every target
/// has one, and every input in it (seeds, and inputs that once crashed) runs cleanly.
final class CorpusTests: XCTestCase {
    private let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    private func inputs(of target: FuzzTarget) throws -> [URL] {
        let directory = corpus.appendingPathComponent(target.name)
        return try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    func testEveryTargetHasACommittedCorpus() throws {
        XCTAssertFalse(FuzzTargets.all.isEmpty)
        for target in FuzzTargets.all {
            XCTAssertFalse(try inputs(of: target).isEmpty, "Fuzz/corpus/\(target.name) is empty or missing")
        }
    }

    func testEveryCorpusInputRunsWithoutATrap() throws {
        var count = 0
        for target in FuzzTargets.all {
            let harness = target.make()
            for file in try inputs(of: target) {
                let bytes = try Data(contentsOf: file)
                bytes.withUnsafeBytes { harness.run($0) }
                count += 1
            }
        }
        XCTAssertGreaterThan(count, FuzzTargets.all.count)
    }

    func testSeedsAreWhatTheCodeProducesNow() throws {
        // A seed the code can no longer produce (a changed wire layout or JSON field) would
        // leave the corpus testing an old format: each target's current seeds must be in it.
        // (Seeds made with fresh ephemeral keys differ on every run; those are not compared.)
        var compared = 0
        for target in FuzzTargets.all {
            let seeds = target.make().seeds()
            guard seeds == target.make().seeds() else { continue }
            compared += 1
            let committed = Set(try inputs(of: target).map { try Data(contentsOf: $0) })
            for seed in seeds {
                XCTAssertTrue(committed.contains(Data(seed)), "\(target.name): a current seed is not committed; rerun quantum-fuzz --write-seeds")
            }
        }
        XCTAssertGreaterThan(compared, FuzzTargets.all.count / 2)
    }
}
