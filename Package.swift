// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "bagpipe",
    platforms: [.macOS(.v14)],
    products: [
        // The wire-format library stands alone: other projects can import it.
        .library(name: "BGPWire", targets: ["BGPWire"]),
        .library(name: "BGPCapture", targets: ["BGPCapture"]),
        .library(name: "BGPRoutes", targets: ["BGPRoutes"]),
        .library(name: "BGPSession", targets: ["BGPSession"]),
        .library(name: "BGPEngine", targets: ["BGPEngine"]),
        .library(name: "Dataplane", targets: ["Dataplane"]),
        .library(name: "BagpipeVPN", targets: ["BagpipeVPN"]),
        .executable(name: "bagpipe-bgp-decode", targets: ["bagpipe-bgp-decode"]),
        .executable(name: "bagpipe-bench", targets: ["bagpipe-bench"]),
        .executable(name: "bagpipe-bgp", targets: ["bagpipe-bgp"]),
        .executable(name: "bagpipe-fakerr", targets: ["bagpipe-fakerr"]),
        .executable(name: "bgp-wire-fuzz", targets: ["bgp-wire-fuzz"]),
        .executable(name: "bgp-codec-fuzz", targets: ["bgp-codec-fuzz"]),
        .executable(name: "bagpipe-rest-attach", targets: ["bagpipe-rest-attach"]),
        .executable(name: "bagpipe-looking-glass", targets: ["bagpipe-looking-glass"]),
        .executable(name: "bagpipe-impex2dot", targets: ["bagpipe-impex2dot"]),
        .executable(name: "bagpipe-bgp-cleanup", targets: ["bagpipe-bgp-cleanup"]),
        .executable(name: "bagpipe-controller", targets: ["bagpipe-controller"]),
        .executable(name: "bagpipe-agent", targets: ["bagpipe-agent"]),
        // The Neutron resources, shared by the controller and the agent.
        .library(name: "NeutronModel", targets: ["NeutronModel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.30.0"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.30.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.0"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.0.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
    ],
    targets: [
        .target(
            name: "BGPWire",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // What sessions and the engine both hold of a route: its key, interned attribute sets, the
        // changes a peer makes, route targets as subscription keys.
        .target(name: "BGPRoutes", dependencies: ["BGPWire"]),
        // BGP sessions: the RFC 4271 state machine as a value, OPEN negotiation, NIO drivers.
        .target(
            name: "BGPSession",
            dependencies: [
                "BGPWire", "BGPRoutes",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The route engine: Loc-RIB, publish/subscribe by route target, RT-Constraint, reflection.
        .target(
            name: "BGPEngine",
            dependencies: [
                "BGPWire", "BGPRoutes", "BGPSession",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The dataplane contract: endpoint, port and route value types, the driver and instance
        // protocols, the dummy drivers. No HTTP, no request parsing.
        .target(name: "Dataplane", dependencies: ["BGPWire"]),
        // VPN instances (E-VPN, IP VPN) and their identifier allocators, on the engine.
        .target(
            name: "BagpipeVPN",
            dependencies: [
                "BGPEngine", "BGPRoutes", "BGPSession", "BGPWire", "Dataplane", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ]),
        // The original's REST API and looking glass, on Hummingbird.
        .target(
            name: "BagpipeAPI",
            dependencies: [
                "BagpipeVPN", "BGPEngine", "BGPSession", "BGPWire", .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The kernel's rtnetlink headers, for Netlink.
        .target(name: "CNetlink"),
        // rtnetlink over a socket: links, addresses, neighbours and FDB entries, routes, rules.
        .target(name: "Netlink", dependencies: ["CNetlink", "BGPWire"]),
        // Client programs (ovs-vsctl, ovs-ofctl) run to their end, for the OVS driver and the agent.
        .target(name: "ProgramRunner"),
        // The dataplane drivers a bgp.conf names: dummy, and the Linux (netlink) drivers.
        .target(name: "BagpipeDataplane", dependencies: ["Dataplane", "BagpipeConfig", "BGPWire", "Netlink", "ProgramRunner", .product(name: "Logging", package: "swift-log")]),
        // What the command-line tools share: the API port from bgp.conf, HTTP to the daemon.
        .target(
            name: "BagpipeCLI",
            dependencies: [
                "BGPWire", "BagpipeConfig", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]),
        .executableTarget(
            name: "bagpipe-rest-attach",
            dependencies: ["BagpipeCLI", "BGPWire", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "bagpipe-looking-glass",
            dependencies: ["BagpipeCLI", "BGPWire", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "bagpipe-impex2dot",
            dependencies: ["BagpipeCLI", "BGPWire", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "bagpipe-bgp-cleanup",
            dependencies: ["BagpipeConfig", "BagpipeVPN", "BagpipeDataplane", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // oslo.config-style INI files, for bgp.conf and controller.conf.
        .target(name: "INIConfig"),
        // bgp.conf: the options of each section.
        .target(name: "BagpipeConfig", dependencies: ["INIConfig", "BGPWire"]),
        // The controller (neutron-server's role): Neutron resources as values, the API's rules on
        // them (no I/O), their storage on SQLKit, the state owner and host watch, the HTTP API.
        .target(name: "NeutronModel"),
        .target(name: "ControllerCore", dependencies: ["NeutronModel", .product(name: "HashTreeCollections", package: "swift-collections")]),
        .target(name: "ControllerStore", dependencies: ["NeutronModel", .product(name: "SQLKit", package: "sql-kit"), .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "ControllerService",
            dependencies: [
                "ControllerCore", "ControllerStore", "NeutronModel", .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]),
        .target(
            name: "ControllerAPI",
            dependencies: [
                "ControllerCore", "ControllerService", "NeutronModel", .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]),
        .executableTarget(
            name: "bagpipe-controller",
            dependencies: [
                "ControllerAPI", "ControllerCore", "ControllerService", "ControllerStore", "INIConfig", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "SQLiteKit", package: "sqlite-kit"), .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        // The compute-node agent: the host's view and the attachments it means (no I/O), then the
        // service that watches the controller, plugs ports and drives bagpipe-bgp's REST API.
        .target(name: "AgentCore", dependencies: ["NeutronModel"]),
        .target(
            name: "AgentService",
            dependencies: [
                "AgentCore", "NeutronModel", "INIConfig", "Netlink", "ProgramRunner", .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "bagpipe-agent",
            dependencies: [
                "AgentService", "AgentCore", "INIConfig", .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "bagpipe-bgp",
            dependencies: [
                "BGPEngine", "BGPSession", "BGPWire", "BagpipeConfig", "BagpipeVPN", "BagpipeAPI", "BagpipeDataplane",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The original's two-client TCP relay, for setups that use it today.
        .executableTarget(
            name: "bagpipe-fakerr",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "BGPCapture",
            dependencies: ["BGPWire", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .executableTarget(
            name: "bagpipe-bgp-decode",
            dependencies: [
                "BGPWire", "BGPCapture", "BGPSession",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Counts heap allocations for the benchmark by interposing malloc and friends.
        .target(name: "AllocationCounter"),
        .executableTarget(
            name: "bagpipe-bench",
            dependencies: [
                "BGPWire", "BGPRoutes", "BGPSession", "BGPEngine", "AllocationCounter", "BagpipeLab", "BagpipeCLI", "BagpipeVPN", "BagpipeDataplane", "Dataplane", "Netlink",
                "NeutronModel", "AgentCore", "AgentService", "ControllerLab", .product(name: "Logging", package: "swift-log"), .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/bagpipe-bench"
        ),
        // What the fuzzers and the regression tests hold the codec to.
        .target(name: "BGPWireOracle", dependencies: ["BGPWire"]),
        // Coverage-guided fuzzing with libFuzzer (built with -sanitize=fuzzer, BENCHMARKS.md);
        // without it, a corpus replay.
        .executableTarget(name: "bgp-codec-fuzz", dependencies: ["BGPWire", "BGPWireOracle"], path: "Benchmarks/bgp-codec-fuzz"),
        .executableTarget(
            name: "bgp-wire-fuzz",
            dependencies: [
                "BGPWire", "BGPWireOracle", "BagpipeLab",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/bgp-wire-fuzz"
        ),
        .testTarget(
            name: "BGPWireTests",
            dependencies: [
                "BGPWire", "BGPWireOracle", "BGPCapture", "BagpipeLab",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            // Data the tests read from the source tree.
            exclude: ["Conformance/exceptions.jsonl", "Regressions", "FuzzCorpus"]
        ),
        // What the tests, the benchmarks and the fuzzer run things with: processes, peer daemons and
        // their configurations, network namespaces, Open vSwitch instances, polling with a deadline,
        // a seeded random generator. Not linked into the daemon or the tools.
        .target(
            name: "BagpipeLab",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "BGPEngineTests",
            dependencies: ["BGPRoutes", 
                "BGPEngine", "BGPSession", "BGPWire", "BagpipeLab", "BagpipeConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "BagpipeAPITests",
            dependencies: [
                "BagpipeAPI", "BagpipeVPN", "Dataplane", "BGPEngine", "BGPWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The daemon and the command-line tools as processes: the API under hostile input, the tools,
        // the original's Python clients.
        // A bagpipe-controller process for tests and benchmarks, with HTTP helpers that log in.
        .target(
            name: "ControllerLab",
            dependencies: [
                "BagpipeLab", "NeutronModel", .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        .testTarget(
            name: "ControllerTests",
            dependencies: [
                "ControllerLab", "ControllerCore", "ControllerService", "ControllerStore", "NeutronModel", "BagpipeLab", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            exclude: ["python"]),
        // The agent against a recording fake of bagpipe-bgp's API and a real controller; two hosts in
        // namespaces with real bagpipe-bgp and pings.
        .testTarget(
            name: "AgentTests",
            dependencies: [
                "AgentCore", "AgentService", "NeutronModel", "BagpipeLab", "ControllerLab", "INIConfig", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]),
        // The two applications end to end (issue 15): networking-bagpipe's fullstack scenarios and the
        // tempest BGPVPN scenarios, in namespaces, everything created through the controller's API.
        .testTarget(name: "ScenarioTests", dependencies: ["BagpipeLab", "ControllerLab", "NeutronModel"]),
        .testTarget(name: "BagpipeToolTests", dependencies: ["BagpipeCLI", "BagpipeLab", "BGPWire"]),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink", "BagpipeLab", "BGPWire"]),
        // The Linux drivers with namespaces, veth pairs, bridges, VXLAN and real pings.
        .testTarget(name: "DataplaneTests", dependencies: ["Dataplane", "BagpipeLab", "BagpipeDataplane", "BagpipeVPN", "BGPWire"]),
        .testTarget(name: "BagpipeVPNTests", dependencies: ["Dataplane", "BGPRoutes", "BagpipeAPI", "BagpipeVPN", "BGPEngine", "BGPSession", "BGPWire"]),
        .testTarget(
            name: "BGPSessionTests",
            dependencies: [
                "BGPRoutes", "BGPSession", "BGPWire", "BagpipeLab",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
    ]
)
