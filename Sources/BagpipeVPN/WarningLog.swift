import BGPWire
import Logging
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// The looking glass's `logs` (reference §2.1): the last 100 records of level warning and above,
/// for the whole process and per object (a VPN instance, a peer, a driver), newest first. Objects
/// are named by the `lg` metadata of the logger that wrote the record (`VRF-1`, `BGP-192.0.2.1`).
public final class WarningLog: Sendable {
    public struct Record: Sendable {
        public var level: Logger.Level
        /// "YYYY-MM-DD HH:MM:SS", UTC.
        public var time: String
        public var name: String
        public var message: String

        public var json: JSONValue {
            .object([("level", .string(level.rawValue.uppercased())), ("time", .string(time)), ("name", .string(name)), ("message", .string(message))])
        }
    }

    public static let shared = WarningLog()
    public static let limit = 100

    private struct State {
        var all: [Record] = []
        var byObject: [String: [Record]] = [:]
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    public func add(_ record: Record, object: String?) {
        state.withLockedValue { s in
            s.all.append(record)
            if s.all.count > Self.limit { s.all.removeFirst(s.all.count - Self.limit) }
            if let object {
                s.byObject[object, default: []].append(record)
                if let n = s.byObject[object]?.count, n > Self.limit { s.byObject[object]?.removeFirst(n - Self.limit) }
            }
        }
    }

    /// Newest first; the whole process when `object` is nil.
    public func records(object: String? = nil) -> [Record] {
        state.withLockedValue { s in (object.map { s.byObject[$0] ?? [] } ?? s.all).reversed() }
    }

    public var count: Int { state.withLockedValue { $0.all.count } }

    public func json(object: String? = nil) -> JSONValue { .array(records(object: object).map(\.json)) }

    /// "YYYY-MM-DD HH:MM:SS", UTC, as the original's looking glass shows times.
    public static func timestamp(_ seconds: Double? = nil) -> String {
        var t = time_t(seconds ?? Double(time(nil)))
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
    }
}

/// A log handler that writes through another one and keeps warnings and errors for the looking glass.
public struct RecordingLogHandler: LogHandler {
    var inner: any LogHandler
    let label: String
    let log: WarningLog

    public init(label: String, inner: any LogHandler, log: WarningLog = .shared) {
        self.label = label
        self.inner = inner
        self.log = log
    }

    public var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        if event.level >= .warning {
            let object = event.metadata?["lg"] ?? inner.metadata["lg"]
            log.add(WarningLog.Record(level: event.level, time: WarningLog.timestamp(), name: label, message: event.message.description), object: object.map { "\($0)" })
        }
        inner.log(event: event)
    }
}
