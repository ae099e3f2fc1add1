import Foundation
import QuantumCore

/// Extra addresses on the TUN device (floating IPs), each a /32 so the device's route
/// for the network is untouched.
public enum InterfaceAddress {
    /// Adds `address`/32 to `device`; adding one that is already there is not an error.
    public static func add(_ address: IPv4Address, to device: String) throws(HostCommand.Failure) {
        try HostCommand.run("ip", ["-4", "addr", "replace", "\(address)/32", "dev", device])
    }

    /// Removes `address`/32 from `device`; removing one that is not there is not an error.
    public static func remove(_ address: IPv4Address, from device: String) throws(HostCommand.Failure) {
        guard has(address, on: device) else { return }
        try HostCommand.run("ip", ["-4", "addr", "del", "\(address)/32", "dev", device])
    }

    /// Whether `device` carries `address`/32.
    public static func has(_ address: IPv4Address, on device: String) -> Bool {
        let listing = (try? HostCommand.run("ip", ["-4", "-o", "addr", "show", "dev", device])) ?? ""
        return listing.contains(" \(address)/32 ")
    }
}

/// Gateway client (`--forward`): everything without a more specific route goes through the
/// TUN device, while quantum's own traffic stays on the underlay. Linux policy routing, as
/// wg-quick does it:
///
/// - table ``table`` holds `default dev <device>`;
/// - rule ``suppressPriority``: look up `main` but ignore its default route
///   (`suppress_prefixlength 0`), so every more specific route still wins;
/// - rule ``tunnelPriority``: packets without quantum's ``mark`` use table ``table``;
/// - quantum's UDP sockets carry ``mark`` (``UDPSocket/setMark(_:)``), so traffic to peers'
///   underlay endpoints follows `main` as before;
/// - each etcd endpoint that `main` reaches through a router gets a /32 route to that router,
///   tagged with protocol ``routeProtocol`` (etcd's HTTP client cannot mark its sockets).
///
/// ``remove()`` deletes all of it by priority, table and protocol, so it also clears what a
/// crashed run left behind; ``install(device:keepOnUnderlay:)`` starts with it.
public enum GatewayClientRouting {
    /// The routing table with the default route through the device.
    public static let table = 1099
    /// The firewall mark of quantum's own UDP packets.
    public static let mark: UInt32 = 0x1099
    /// Priority of the rule that consults `main` without its default route.
    public static let suppressPriority = 10990
    /// Priority of the rule that sends unmarked traffic to ``table``.
    public static let tunnelPriority = 10991
    /// The route protocol number tagging the /32 routes kept on the underlay.
    public static let routeProtocol = 220

    /// Installs the routes and rules; returns the addresses given a /32 route on the underlay.
    ///
    /// What is already in place is kept (a rolling restart's successor, or a crashed run's
    /// leftovers, find it so): routes are replaced, a rule is re-added only when it is missing
    /// or different, and /32 routes of etcd endpoints no longer configured are deleted. So the
    /// host's routing never passes through a state where outside traffic leaves unencrypted.
    @discardableResult
    public static func install(device: String, keepOnUnderlay addresses: [IPv4Address]) throws(HostCommand.Failure) -> [IPv4Address] {
        do {
            var pinned: [IPv4Address] = []
            for address in addresses {
                // Asked with quantum's mark, so the answer is the underlay route `main` gives,
                // whether or not the rules are in place already.
                let route = try HostCommand.run("ip", ["-4", "-o", "route", "get", "\(address)", "mark", "\(mark)"])
                guard let via = word(after: "via", in: route), let dev = word(after: "dev", in: route) else { continue }
                try HostCommand.run("ip", ["-4", "route", "replace", "\(address)/32", "via", via, "dev", dev,
                                           "proto", "\(routeProtocol)"])
                pinned.append(address)
            }
            let stale = try HostCommand.run("ip", ["-4", "-o", "route", "show", "proto", "\(routeProtocol)"])
                .split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
                .filter { destination in !pinned.contains { "\($0)" == destination || "\($0)/32" == destination } }
            for destination in stale {
                try HostCommand.run("ip", ["-4", "route", "del", destination, "proto", "\(routeProtocol)"])
            }
            try HostCommand.run("ip", ["-4", "route", "replace", "default", "dev", device, "table", "\(table)"])
            try ensureRule(priority: suppressPriority, ["table", "main", "suppress_prefixlength", "0"],
                           shown: ["lookup main", "suppress_prefixlength 0"])
            try ensureRule(priority: tunnelPriority, ["not", "fwmark", "\(mark)", "table", "\(table)"],
                           shown: ["not from all fwmark 0x\(String(mark, radix: 16))", "lookup \(table)"])
            return pinned
        } catch {
            remove()
            throw error
        }
    }

    /// Leaves the rule at `priority` alone when it is the only one there and its listing has
    /// every text in `shown`; otherwise deletes what is there and adds it with `arguments`.
    private static func ensureRule(priority: Int, _ arguments: [String], shown: [String]) throws(HostCommand.Failure) {
        let listing = try HostCommand.run("ip", ["-4", "rule", "show", "priority", "\(priority)"])
        let lines = listing.split(separator: "\n")
        if lines.count == 1, shown.allSatisfy({ lines[0].contains($0) }) { return }
        while (try? HostCommand.run("ip", ["-4", "rule", "del", "priority", "\(priority)"])) != nil {}
        try HostCommand.run("ip", ["-4", "rule", "add", "priority", "\(priority)"] + arguments)
    }

    /// Removes every rule and route ``install(device:keepOnUnderlay:)`` adds; absent ones are skipped.
    public static func remove() {
        for priority in [tunnelPriority, suppressPriority] {
            while (try? HostCommand.run("ip", ["-4", "rule", "del", "priority", "\(priority)"])) != nil {}
        }
        _ = try? HostCommand.run("ip", ["-4", "route", "flush", "table", "\(table)"])
        _ = try? HostCommand.run("ip", ["-4", "route", "flush", "proto", "\(routeProtocol)"])
    }

    /// The word after `key` in `ip -o` output, e.g. the router after `via`.
    static func word(after key: String, in text: String) -> String? {
        let words = text.split(whereSeparator: \.isWhitespace)
        guard let index = words.firstIndex(of: Substring(key)), index + 1 < words.count else { return nil }
        return String(words[index + 1])
    }
}

/// Gateway server (`--serve-gateway`): IPv4 forwarding on, and peers' traffic for outside
/// the network masqueraded behind this host's own address by an nftables table of its own,
/// `inet quantum_<device>`. ``remove(device:savedForwarding:)`` deletes the table and puts
/// the forwarding setting back as it was before the first install (kept in a file, so a
/// crashed run is undone by the next one).
public enum GatewayServerForwarding {
    static let forwardingPath = "/proc/sys/net/ipv4/ip_forward"

    /// The nftables table name for `device` (letters, digits and '_' only).
    public static func tableName(device: String) -> String {
        "quantum_" + String(device.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
    }

    /// The nftables script that (re)creates the table in one transaction: declaring the table
    /// first makes the delete succeed whether or not it existed, and nft applies the whole
    /// script atomically, so masquerading never lapses while the table is replaced.
    static func ruleset(device: String, network: IPv4Prefix) -> String {
        """
        table inet \(tableName(device: device))
        delete table inet \(tableName(device: device))
        table inet \(tableName(device: device)) {
            chain postrouting {
                type nat hook postrouting priority srcnat; policy accept;
                ip saddr \(network) ip daddr != \(network) masquerade
            }
        }
        """
    }

    /// Enables forwarding and masquerading. The forwarding setting found is saved at
    /// `savedForwarding` unless a previous run already saved one (its crash left forwarding on).
    public static func install(device: String, network: IPv4Prefix, savedForwarding: String) throws(HostCommand.Failure) {
        do {
            if !FileManager.default.fileExists(atPath: savedForwarding) {
                let current = try String(contentsOfFile: forwardingPath, encoding: .utf8)
                try current.write(toFile: savedForwarding, atomically: true, encoding: .utf8)
            }
            try "1\n".write(toFile: forwardingPath, atomically: false, encoding: .utf8)
        } catch {
            throw HostCommand.Failure(description: "enable IPv4 forwarding (\(forwardingPath), saved at \(savedForwarding)): \(error)")
        }
        try HostCommand.run("nft", ["-f", "-"], input: ruleset(device: device, network: network))
    }

    /// Deletes the table and restores the saved forwarding setting; returns the problems met.
    public static func remove(device: String, savedForwarding: String) -> [String] {
        var problems: [String] = []
        if (try? HostCommand.run("nft", ["list", "table", "inet", tableName(device: device)])) != nil {
            do {
                try HostCommand.run("nft", ["delete", "table", "inet", tableName(device: device)])
            } catch {
                problems.append(error.description)
            }
        }
        guard let saved = try? String(contentsOfFile: savedForwarding, encoding: .utf8) else { return problems }
        do {
            try saved.write(toFile: forwardingPath, atomically: false, encoding: .utf8)
            try FileManager.default.removeItem(atPath: savedForwarding)
        } catch {
            problems.append("restore IPv4 forwarding to \(saved.trimmingCharacters(in: .whitespacesAndNewlines)) from \(savedForwarding): \(error)")
        }
        return problems
    }
}
