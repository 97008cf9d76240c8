import BagpipeVPN
import Metrics
import Prometheus

/// The daemon's Prometheus metrics: what swift-metrics records (API requests and latencies, from
/// Hummingbird's middleware) and gauges of the daemon's state set at each scrape.
public final class DaemonMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) { self.registry = registry }

    /// Sends swift-metrics (process-wide) to this registry; call once, at start-up.
    public func bootstrap() { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry)) }

    static var peers: MetricNameDescriptor { MetricNameDescriptor(namespace: "bagpipe", subsystem: "bgp", metricName: "peers", unitName: "", helpText: "BGP sessions by FSM state") }
    static var routes: MetricNameDescriptor { MetricNameDescriptor(namespace: "bagpipe", subsystem: "bgp", metricName: "routes", unitName: "", helpText: "Paths in the RIB by family and origin") }
    static var instances: MetricNameDescriptor { MetricNameDescriptor(namespace: "bagpipe", subsystem: "vpn", metricName: "instances", unitName: "", helpText: "VPN instances by type") }
    static var endpoints: MetricNameDescriptor { MetricNameDescriptor(namespace: "bagpipe", subsystem: "vpn", metricName: "endpoints", unitName: "", helpText: "Endpoints attached through the API") }
    static var dataplaneQueue: MetricNameDescriptor {
        MetricNameDescriptor(namespace: "bagpipe", subsystem: "dataplane", metricName: "queued_requests", unitName: "", helpText: "Dataplane requests waiting for the drivers or being applied (grows while a switch or netlink hangs)")
    }
    static var dataplaneDifferences: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "bagpipe", subsystem: "dataplane", metricName: "differences", unitName: "",
            helpText: "Entries where the kernel or switch and the VPN instances disagree (consistency check at each scrape; 0 when consistent)")
    }
    static var warnings: MetricNameDescriptor { MetricNameDescriptor(namespace: "bagpipe", metricName: "warnings", unitName: "", helpText: "Warnings and errors logged (the last 100)") }

    /// The text exposition after setting the state gauges from `snapshot`.
    public func render(_ snapshot: VPNService.MetricsSnapshot) -> String {
        for (state, n) in snapshot.peersByState { registry.makeGauge(descriptor: Self.peers, labels: [("state", state)]).set(Double(n)) }
        for route in snapshot.routes {
            registry.makeGauge(descriptor: Self.routes, labels: [("family", route.family), ("origin", "local")]).set(Double(route.local))
            registry.makeGauge(descriptor: Self.routes, labels: [("family", route.family), ("origin", "received")]).set(Double(route.received))
        }
        for type in ["evpn", "ipvpn"] { registry.makeGauge(descriptor: Self.instances, labels: [("type", type)]).set(Double(snapshot.instances[type] ?? 0)) }
        registry.makeGauge(descriptor: Self.endpoints).set(Double(snapshot.endpoints))
        registry.makeGauge(descriptor: Self.warnings).set(Double(snapshot.warnings))
        registry.makeGauge(descriptor: Self.dataplaneQueue).set(Double(snapshot.dataplaneQueue))
        for type in ["evpn", "ipvpn"] {
            let n = snapshot.dataplaneDifferences.first { $0.key.rawValue == type }?.value ?? 0
            registry.makeGauge(descriptor: Self.dataplaneDifferences, labels: [("vpn_type", type)]).set(Double(n))
        }
        return registry.emitToString()
    }
}
