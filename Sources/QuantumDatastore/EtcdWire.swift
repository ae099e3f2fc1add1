import Foundation

// The JSON shapes of etcd v3's gRPC gateway (as served by etcd 3.4 on its client port).
// Keys and values are base64; int64 fields are JSON strings; fields equal to their
// default (0, false, empty) are omitted.

enum EtcdWire {
    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    struct RangeRequest: Encodable {
        var key: String
        var rangeEnd: String?
        /// At most this many keys in the answer (nil: all).
        var limit: String?
        /// Read at this revision (nil: the newest).
        var revision: String?
        enum CodingKeys: String, CodingKey { case key, rangeEnd = "range_end", limit, revision }
    }

    struct PutRequest: Encodable {
        var key: String
        var value: String
        var lease: String?
    }

    struct DeleteRangeRequest: Encodable {
        var key: String
    }

    struct Compare: Encodable {
        var key: String
        var target: String
        var result = "EQUAL"
        var createRevision: String?
        var modRevision: String?
        enum CodingKeys: String, CodingKey {
            case key, target, result, createRevision = "create_revision", modRevision = "mod_revision"
        }
    }

    struct RequestOp: Encodable {
        var requestPut: PutRequest
        enum CodingKeys: String, CodingKey { case requestPut = "request_put" }
    }

    struct TxnRequest: Encodable {
        var compare: [Compare]
        var success: [RequestOp]
    }

    struct LeaseGrantRequest: Encodable {
        var ttl: String
        enum CodingKeys: String, CodingKey { case ttl = "TTL" }
    }

    struct LeaseIDRequest: Encodable {
        var id: String
        enum CodingKeys: String, CodingKey { case id = "ID" }
    }

    struct AuthenticateRequest: Encodable {
        var name: String
        var password: String
    }

    struct WatchCreateRequest: Encodable {
        var key: String
        var rangeEnd: String
        var startRevision: String
        /// Asks etcd for periodic progress messages on an idle watch.
        var progressNotify: Bool
        enum CodingKeys: String, CodingKey {
            case key, rangeEnd = "range_end", startRevision = "start_revision", progressNotify = "progress_notify"
        }
    }

    struct WatchRequest: Encodable {
        var createRequest: WatchCreateRequest
        enum CodingKeys: String, CodingKey { case createRequest = "create_request" }
    }

    struct Header: Decodable {
        var revision: String?
    }

    struct KV: Decodable {
        var key: String
        var value: String?
        var createRevision: String?
        var modRevision: String?
        var lease: String?
        enum CodingKeys: String, CodingKey {
            case key, value, lease, createRevision = "create_revision", modRevision = "mod_revision"
        }

        func keyValue() throws -> KeyValue {
            guard let keyBytes = Data(base64Encoded: key) else { throw Malformed("key '\(key)' is not base64") }
            let keyText = String(decoding: keyBytes, as: UTF8.self)
            guard let valueBytes = Data(base64Encoded: value ?? "") else {
                throw Malformed("the value of key \(keyText) is not base64")
            }
            return KeyValue(key: keyText, value: Array(valueBytes),
                            createRevision: try revision(createRevision, "create_revision"),
                            modRevision: try revision(modRevision, "mod_revision"),
                            lease: try int64(lease, "lease"))
        }
    }

    struct RangeResponse: Decodable {
        var header: Header?
        var kvs: [KV]?
        /// Whether keys beyond the limit remain in the range.
        var more: Bool?
    }

    struct TxnResponse: Decodable {
        var succeeded: Bool?
    }

    struct LeaseGrantResponse: Decodable {
        var id: String?
        var error: String?
        enum CodingKeys: String, CodingKey { case id = "ID", error }
    }

    struct LeaseKeepAliveResponse: Decodable {
        struct Result: Decodable {
            var ttl: String?
            enum CodingKeys: String, CodingKey { case ttl = "TTL" }
        }
        var result: Result?
    }

    struct AuthenticateResponse: Decodable {
        var token: String?
    }

    struct Empty: Decodable {}

    struct ErrorBody: Decodable {
        var error: String?
        var message: String?
    }

    struct WatchMessage: Decodable {
        struct Event: Decodable {
            var type: String?
            var kv: KV
        }
        struct Result: Decodable {
            var header: Header?
            var created: Bool?
            var canceled: Bool?
            var cancelReason: String?
            var compactRevision: String?
            var events: [Event]?
            enum CodingKeys: String, CodingKey {
                case header, created, canceled, events
                case cancelReason = "cancel_reason", compactRevision = "compact_revision"
            }
        }
        struct StreamError: Decodable {
            var message: String?
        }
        var result: Result?
        var error: StreamError?
    }

    /// A field of an etcd answer that is not what the gateway promises.
    struct Malformed: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func int64(_ text: String?, _ field: String) throws -> Int64 {
        guard let text else { return 0 }
        guard let value = Int64(text) else { throw Malformed("field '\(field)' is '\(text)', not an integer") }
        return value
    }

    /// A store revision. etcd's are never negative and far below `Int64.max`; a value
    /// outside that range is a corrupt answer (and the next revision, `revision + 1`,
    /// would not exist).
    static func revision(_ text: String?, _ field: String) throws -> Int64 {
        let value = try int64(text, field)
        guard value >= 0, value < .max else { throw Malformed("field '\(field)' is \(value), not a store revision") }
        return value
    }
}
