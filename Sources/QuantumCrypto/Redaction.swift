// What the values that hold key material show when printed, interpolated into a log line
// or an error, or dumped: everything but the secret. Swift's default rendering of a struct
// lists every stored property, private keys included; these replace it, and their mirrors
// keep `dump` and the rendering of any value that contains them from reaching the bytes.

/// The text that stands for a secret.
let redacted = "<redacted>"

extension StaticKeyPair: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "StaticKeyPair(publicKey: \(KeyEncoding.base64(publicKey)), privateKey: \(redacted))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(self, children: ["publicKey": KeyEncoding.base64(publicKey), "privateKey": redacted], displayStyle: .struct)
    }
}

extension SessionKeys: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "SessionKeys(localIndex: \(localIndex), remoteIndex: \(remoteIndex), isInitiator: \(isInitiator), keys: \(redacted))"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(self, children: ["localIndex": localIndex, "remoteIndex": remoteIndex, "isInitiator": isInitiator,
                                "keys": redacted], displayStyle: .struct)
    }
}

extension Session.Snapshot: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "Session.Snapshot(localIndex: \(localIndex), remoteIndex: \(remoteIndex), isInitiator: \(isInitiator), "
            + "nextSendCounter: \(nextSendCounter), age: \(age), keyMaterial: \(keyMaterial.isEmpty ? "[]" : redacted))"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(self, children: ["localIndex": localIndex, "remoteIndex": remoteIndex, "isInitiator": isInitiator,
                                "nextSendCounter": nextSendCounter, "age": age,
                                "keyMaterial": keyMaterial.isEmpty ? "[]" : redacted], displayStyle: .struct)
    }
}

extension Session: CustomStringConvertible, CustomReflectable {
    public var description: String {
        "Session(localIndex: \(localIndex), remoteIndex: \(remoteIndex), isInitiator: \(isInitiator), keys: \(redacted))"
    }
    public var customMirror: Mirror {
        Mirror(self, children: ["localIndex": localIndex, "remoteIndex": remoteIndex, "isInitiator": isInitiator,
                                "createdAt": createdAt, "keys": redacted], displayStyle: .class)
    }
}

extension InitiatorState: CustomStringConvertible, CustomReflectable {
    public var description: String {
        "InitiatorState(senderIndex: \(senderIndex), peer: \(KeyEncoding.base64(peerPublicKey)), handshake: \(redacted))"
    }
    public var customMirror: Mirror {
        Mirror(self, children: ["senderIndex": senderIndex, "peerPublicKey": KeyEncoding.base64(peerPublicKey),
                                "handshake": redacted], displayStyle: .class)
    }
}

extension ReceivedInitiation: CustomStringConvertible, CustomReflectable {
    public var description: String {
        "ReceivedInitiation(senderIndex: \(senderIndex), peer: \(KeyEncoding.base64(peerPublicKey)), timestamp: \(timestamp), "
            + "handshake: \(redacted))"
    }
    public var customMirror: Mirror {
        Mirror(self, children: ["senderIndex": senderIndex, "peerPublicKey": KeyEncoding.base64(peerPublicKey),
                                "timestamp": timestamp, "handshake": redacted], displayStyle: .class)
    }
}
