import Foundation
import QuantumDatastore
import XCTest

/// EtcdClient.list: a prefix is read in pages, all at the revision of the first.
final class EtcdListingTests: EtcdMembersTestCase {
    func client(_ endpoint: String, pageSize: Int) throws -> EtcdClient {
        let client = try EtcdClient(configuration: .init(endpoints: [endpoint], requestTimeout: .seconds(3),
                                                         listPageSize: pageSize), logger: log.logger)
        clients.append(client)
        return client
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    static func kv(_ key: String) -> String {
        #"{"key":"\#(base64(key))","value":"\#(base64("v" + key))","create_revision":"3","mod_revision":"3"}"#
    }

    /// A member whose range answers are `pages` in turn (each: JSON of the answer).
    func member(pages: [String]) async throws -> FakeEtcdMember {
        let served = Box(0)
        return try await fake { path in
            guard path == "/v3/kv/range" else { return .status(404, "{}") }
            var index = 0
            served.update { index = $0; $0 += 1 }
            return .status(200, pages[min(index, pages.count - 1)])
        }
    }

    /// The JSON fields of a recorded request body.
    static func fields(_ body: String) throws -> [String: String] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: String])
    }

    func testPagesAreReadAtTheFirstPagesRevisionEachStartingAfterTheLastKey() async throws {
        let fake = try await member(pages: [
            #"{"header":{"revision":"42"},"kvs":[\#(Self.kv("/m/a")),\#(Self.kv("/m/b"))],"more":true,"count":"5"}"#,
            #"{"header":{"revision":"45"},"kvs":[\#(Self.kv("/m/c")),\#(Self.kv("/m/d"))],"more":true,"count":"3"}"#,
            #"{"header":{"revision":"45"},"kvs":[\#(Self.kv("/m/e"))],"count":"1"}"#,
        ])
        let store = try client(fake.endpoint, pageSize: 2)
        let (items, revision) = try await store.list(prefix: "/m/")
        XCTAssertEqual(items.map(\.key), ["/m/a", "/m/b", "/m/c", "/m/d", "/m/e"])
        XCTAssertEqual(items.map(\.value), ["/m/a", "/m/b", "/m/c", "/m/d", "/m/e"].map { Array(("v" + $0).utf8) })
        XCTAssertEqual(revision, 42, "the listing is the snapshot at the first page's revision")

        let requests = try fake.bodies.get().map(Self.fields)
        XCTAssertEqual(requests.count, 3)
        XCTAssertEqual(requests.map { $0["limit"] }, ["2", "2", "2"])
        XCTAssertEqual(requests.map { $0["range_end"] }, Array(repeating: Self.base64("/m0"), count: 3))
        XCTAssertEqual(requests.map { $0["key"] }, [Self.base64("/m/"), Self.base64("/m/b\0"), Self.base64("/m/d\0")])
        XCTAssertEqual(requests.map { $0["revision"] }, [nil, "42", "42"])
    }

    func testMoreKeysAnnouncedWithoutProgressIsABadResponse() async throws {
        for page in [#"{"header":{"revision":"7"},"more":true}"#,
                     #"{"header":{"revision":"7"},"kvs":[\#(Self.kv("/a"))],"more":true}"#] {
            let fake = try await member(pages: [page])
            let store = try client(fake.endpoint, pageSize: 1)
            do {
                _ = try await store.list(prefix: "/m/")
                XCTFail("a page that announces more keys but does not move past its start must fail: \(page)")
            } catch let error as DatastoreError {
                XCTAssertTrue("\(error)".contains("announces more keys"), "\(error)")
            }
            XCTAssertEqual(fake.count("/v3/kv/range"), 1, "no request is repeated for a page that makes no progress")
        }
    }

    func testListingInSmallPagesReturnsExactlyThePrefixFromARealEtcd() async throws {
        let server = try await etcd()
        let store = try client(server.endpoint, pageSize: 3)
        let keys = (0..<11).map { "/p/node-\($0 < 10 ? "0" : "")\($0)" }
        for key in keys { try await store.put(key, value: Array(key.utf8), lease: nil) }
        try await store.put("/p", value: [1], lease: nil)
        try await store.put("/q/other", value: [1], lease: nil)
        let before = try await store.list(prefix: "/p/")
        XCTAssertEqual(before.items.map(\.key), keys)
        XCTAssertEqual(before.items.map(\.value), keys.map { Array($0.utf8) })
        try await store.put("/p/node-99", value: [1], lease: nil)
        let after = try await store.list(prefix: "/p/")
        XCTAssertEqual(after.items.count, 12)
        XCTAssertGreaterThan(after.revision, before.revision)
        let one = try await client(server.endpoint, pageSize: 1).list(prefix: "/p/")
        XCTAssertEqual(one.items.map(\.key), after.items.map(\.key))
    }
}
