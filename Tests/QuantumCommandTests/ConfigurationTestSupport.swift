import Foundation
import QuantumCommand
import XCTest

/// A config-file reader over in-memory files, failing like a missing file for any other path.
struct FakeFiles {
    var files: [String: String]

    struct Missing: Error, CustomStringConvertible {
        let description = "no such file"
    }

    func read(_ path: String) throws -> Data {
        guard let text = files[path] else { throw Missing() }
        return Data(text.utf8)
    }
}

func resolve(cli: [String: String] = [:], env: [String: String] = [:], files: [String: String] = [:],
             cores: Int = 4) throws(ConfigurationError) -> Configuration {
    let reader = FakeFiles(files: files)
    return try Configuration.resolve(commandLine: cli, environment: env, fileReader: reader.read, coreCount: cores)
}

/// Asserts that resolving fails with one line that contains every string in `mentions`.
func assertRejected(cli: [String: String] = [:], env: [String: String] = [:], files: [String: String] = [:],
                    mentions: [String], file: StaticString = #filePath, line: UInt = #line) {
    do {
        let configuration = try resolve(cli: cli, env: env, files: files)
        XCTFail("expected an error, resolved \(configuration)", file: file, line: line)
    } catch {
        let text = error.description
        XCTAssertFalse(text.contains("\n"), "error is not one line: \(text)", file: file, line: line)
        for mention in mentions {
            XCTAssertTrue(text.contains(mention), "'\(text)' does not mention '\(mention)'", file: file, line: line)
        }
    }
}
