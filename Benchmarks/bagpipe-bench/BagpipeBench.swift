import ArgumentParser

@main
struct BagpipeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bagpipe-bench",
        abstract: "Benchmarks of bagpipe against its peers, measured side by side in one run.",
        discussion: "Run in release mode: swift run -c release bagpipe-bench codec",
        subcommands: [CodecBenchmark.self, IngestBenchmark.self, ReflectorBenchmark.self, IngestReceiver.self, AttachBenchmark.self, FDBBenchmark.self, OVSBenchmark.self, ControllerBenchmark.self, AgentBenchmark.self, ScaleBenchmark.self, RestartBenchmark.self]
    )
}
