import Foundation
import XCTest
@testable import QuantumDatastore

/// Revisions from an etcd answer are checked before the client computes the next one: a
/// corrupt or hostile answer with `Int64.max` crashed the watch on `revision + 1` (found by
/// the etcd-watch fuzz target; the inputs are in Fuzz/corpus/etcd-watch/crash-*).
final class EtcdWireTests: XCTestCase {
    private func watchMessage(_ json: String) throws -> EtcdWire.WatchMessage {
        try JSONDecoder().decode(EtcdWire.WatchMessage.self, from: Data(json.utf8))
    }

    func testRevisionsOutsideTheStoreRangeAreRefused() throws {
        XCTAssertEqual(try EtcdWire.revision("42", "header.revision"), 42)
        XCTAssertEqual(try EtcdWire.revision(nil, "header.revision"), 0)
        XCTAssertEqual(try EtcdWire.revision(String(Int64.max - 1), "header.revision"), Int64.max - 1)
        for bad in [String(Int64.max), "-1", String(Int64.min)] {
            XCTAssertThrowsError(try EtcdWire.revision(bad, "header.revision")) { error in
                XCTAssertTrue("\(error)".contains("header.revision"), "\(error)")
            }
        }
    }

    func testAnEventAtTheLastRevisionIsAMalformedKeyValue() throws {
        let message = try watchMessage("""
            {"result":{"header":{"revision":"9"},"events":[{"kv":{"key":"L3F1YW50dW0vbm9kZXMvMTAuOTkuMC40",\
            "mod_revision":"9223372036854775807","value":"e30="}}]}}
            """)
        let kv = try XCTUnwrap(message.result?.events?.first?.kv)
        XCTAssertThrowsError(try kv.keyValue()) { error in
            XCTAssertTrue("\(error)".contains("mod_revision"), "\(error)")
        }
        var fine = kv
        fine.modRevision = "9"
        XCTAssertEqual(try fine.keyValue().modRevision, 9)
    }
}
