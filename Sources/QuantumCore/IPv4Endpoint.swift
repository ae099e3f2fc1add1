/// An IPv4 address and UDP port, written "a.b.c.d:port" (a reflexive endpoint in a mapping).
public struct IPv4Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4Address
    public var port: UInt16

    public init(_ address: IPv4Address, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// Parses "a.b.c.d:port" (port 1–65535); nil for anything else.
    public init?(_ text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":"), let address = IPv4Address(text[..<colon]),
              let port = UInt16(text[text.index(after: colon)...]), port != 0 else { return nil }
        self.init(address, port: port)
    }

    public var description: String { "\(address):\(port)" }
}
