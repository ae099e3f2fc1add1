import Logging
import QuantumCore
import XCTest

@testable import QuantumCommand

/// Which etcd endpoints a gateway client keeps on the underlay.
final class GatewayRolesTests: XCTestCase {
    func testEtcdEndpointsGiveTheirIPv4AddressesAndNamesAreSkipped() {
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let addresses = GatewayRoles.etcdAddresses(
            ["10.0.0.5:2379", "http://192.0.2.7:2379", "https://198.51.100.9", "etcd.example:2379"], logger: logger)
        XCTAssertEqual(addresses, [IPv4Address("10.0.0.5")!, IPv4Address("192.0.2.7")!, IPv4Address("198.51.100.9")!])
    }
}
