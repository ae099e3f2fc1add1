import Glibc

/// A failed system call: what was being done and the errno it returned.
public struct SystemError: Error, CustomStringConvertible, Equatable {
    /// What was being attempted, e.g. "open /dev/net/tun".
    public let operation: String
    /// The errno value.
    public let code: Int32

    public init(_ operation: String, code: Int32) {
        self.operation = operation
        self.code = code
    }

    public var description: String {
        "\(operation): \(String(decoding: strerrorBytes(code), as: UTF8.self)) (errno \(code))"
    }
}

private func strerrorBytes(_ code: Int32) -> [UInt8] {
    guard let text = strerror(code) else { return Array("unknown error".utf8) }
    var bytes: [UInt8] = []
    var cursor = text
    while cursor.pointee != 0 {
        bytes.append(UInt8(bitPattern: cursor.pointee))
        cursor += 1
    }
    return bytes
}

/// Runs a call that returns -1 and sets errno on failure, retrying on EINTR.
@discardableResult
func retryingInterrupts(_ operation: @autoclosure () -> String, _ call: () -> Int32) throws(SystemError) -> Int32 {
    while true {
        let result = call()
        if result >= 0 { return result }
        if errno == EINTR { continue }
        throw SystemError(operation(), code: errno)
    }
}
