import BagpipeLab
import Foundation
import Testing

/// controller.conf: a bad value stops start-up with a message naming the option.
@Suite struct ConfigurationTests {
    static func start(_ conf: String) throws -> (status: Int32, output: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bagpipe-conf-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try conf.write(to: dir.appendingPathComponent("c.conf"), atomically: true, encoding: .utf8)
        return try runProcess(builtProduct("bagpipe-controller"), ["--config-file", dir.appendingPathComponent("c.conf").path])
    }

    @Test(arguments: [
        ("[DEFAULT]\nbind_port = 99999\n[identity]\nadmin = s, admin, admin\n", "bind_port"),
        ("[database]\nconnection = mysql://x\n[identity]\nadmin = s, admin, admin\n", "connection"),
        ("[ml2_type_vxlan]\nvni_ranges = 10:5\n[identity]\nadmin = s, admin, admin\n", "vni_ranges"),
        ("[identity]\nadmin = onlypassword\n", "admin"),
        ("[DEFAULT]\nbind_port = 9696\n", "[identity]"),
        ("[token]\nexpiration = -3\n[identity]\nadmin = s, admin, admin\n", "expiration"),
    ])
    func aBadValueStopsStartUpNamingIt(conf: String, option: String) throws {
        let r = try Self.start(conf)
        #expect(r.status != 0)
        #expect(r.output.contains(option), "\(r.output)")
    }
}
