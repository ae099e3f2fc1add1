import QuantumCommand
import QuantumCore
import XCTest

final class ConfigurationFileTests: XCTestCase {
    func testYAMLScalarsOfAnyTypeAreReadAsText() throws {
        let yaml = """
            # quantum settings
            listen-port: 2000
            disable-v4: true
            mtu: 1400
            device-name: 'vpn%d'
            network-lease-time: 1h
            datastore-endpoints:
              - 10.0.0.1:2379
              - https://etcd.example
            datastore-password: "12345"
            """
        let configuration = try resolve(cli: ["conf-file": "/q.yml"], files: ["/q.yml": yaml])
        XCTAssertEqual(configuration.listenPort, 2000)
        XCTAssertTrue(configuration.disableV4)
        XCTAssertEqual(configuration.mtu, 1400)
        XCTAssertEqual(configuration.deviceName, "vpn%d")
        XCTAssertEqual(configuration.network.leaseTimeSeconds, 3600)
        XCTAssertEqual(configuration.datastoreEndpoints, ["10.0.0.1:2379", "https://etcd.example"])
        XCTAssertEqual(configuration.datastorePassword, "12345")
    }

    func testJSONFile() throws {
        let json = """
            {"listen-port": 2001, "disable-v6": true, "log-level": "debug",
             "datastore-endpoints": ["a.example:1", "b.example:2"], "private-ip": "10.99.0.9"}
            """
        let configuration = try resolve(env: ["QUANTUM_CONF_FILE": "/etc/q.json"], files: ["/etc/q.json": json])
        XCTAssertEqual(configuration.listenPort, 2001)
        XCTAssertTrue(configuration.disableV6)
        XCTAssertEqual(configuration.logLevel, .debug)
        XCTAssertEqual(configuration.datastoreEndpoints, ["a.example:1", "b.example:2"])
        XCTAssertEqual(configuration.privateIP, IPv4Address("10.99.0.9"))
    }

    func testEmptyYAMLFileSetsNothing() throws {
        XCTAssertEqual(try resolve(cli: ["conf-file": "/e.yaml"], files: ["/e.yaml": ""]), try resolve())
    }

    func testUnknownKeyIsAnError() {
        assertRejected(cli: ["conf-file": "/q.yml"], files: ["/q.yml": "listen-port: 1\nlisten_port: 2\n"],
                       mentions: ["unknown key 'listen_port'", "/q.yml", "did you mean 'listen-port'"])
        assertRejected(cli: ["conf-file": "/q.json"], files: ["/q.json": #"{"frobnicate": 1}"#],
                       mentions: ["unknown key 'frobnicate'", "/q.json"])
    }

    func testConfFileKeyIsNotAllowedInAFile() {
        assertRejected(cli: ["conf-file": "/q.yml"], files: ["/q.yml": "conf-file: /other.yml\n"],
                       mentions: ["'conf-file'", "/q.yml", "not allowed"])
    }

    func testBadExtension() {
        assertRejected(cli: ["conf-file": "/etc/quantum.toml"], files: ["/etc/quantum.toml": "mtu = 1\n"],
                       mentions: ["/etc/quantum.toml", ".yml, .yaml or .json"])
    }

    func testMissingFile() {
        assertRejected(cli: ["conf-file": "/nope.yml"], mentions: ["cannot read config file /nope.yml", "no such file"])
    }

    func testUnparsableFiles() {
        assertRejected(cli: ["conf-file": "/bad.yml"], files: ["/bad.yml": "listen-port: [1\n"],
                       mentions: ["/bad.yml", "invalid YAML", "line"])
        assertRejected(cli: ["conf-file": "/bad.json"], files: ["/bad.json": "{\"mtu\": }"],
                       mentions: ["/bad.json", "invalid JSON", "character 8"])
        assertRejected(cli: ["conf-file": "/list.json"], files: ["/list.json": "[1, 2]"],
                       mentions: ["/list.json", "expected a JSON object"])
        assertRejected(cli: ["conf-file": "/list.yml"], files: ["/list.yml": "- mtu\n"],
                       mentions: ["/list.yml", "expected a mapping"])
        assertRejected(cli: ["conf-file": "/dup.yml"], files: ["/dup.yml": "mtu: 1400\nmtu: 1300\n"],
                       mentions: ["/dup.yml", "'mtu'"])
    }

    func testUnusableValues() {
        assertRejected(cli: ["conf-file": "/q.yml"], files: ["/q.yml": "mtu:\n"],
                       mentions: ["'mtu'", "/q.yml", "no value"])
        assertRejected(cli: ["conf-file": "/q.yml"], files: ["/q.yml": "mtu: {a: 1}\n"],
                       mentions: ["'mtu'", "/q.yml", "not a mapping"])
        assertRejected(cli: ["conf-file": "/q.yml"], files: ["/q.yml": "mtu: [1400]\n"],
                       mentions: ["'mtu'", "/q.yml", "not a list"])
        assertRejected(cli: ["conf-file": "/q.json"], files: ["/q.json": #"{"mtu": null}"#],
                       mentions: ["'mtu'", "/q.json", "no value"])
    }

    func testYAMLBooleanSpellingsOtherThanTrueFalseAreRejected() {
        assertRejected(cli: ["conf-file": "/q.yml"], files: ["/q.yml": "disable-v4: yes\n"],
                       mentions: ["'yes'", "--disable-v4", "in config file /q.yml", "true or false"])
    }
}
