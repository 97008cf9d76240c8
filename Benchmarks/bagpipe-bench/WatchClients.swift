import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The fan-out benchmark's watchers: one TCP connection each, a raw HTTP/1.1 request, and a handler
/// on the event loop that notes when the bytes of the awaited update arrive. No task per watcher and
/// no HTTP parsing: what is timed is the controller (and the kernel), not the watchers' clients.
final class WatchClients: @unchecked Sendable {
    /// Arrival times (monotonic seconds) per watcher of the awaited marker.
    let arrivals: NIOLockedValueBox<[Double?]>
    let marker = NIOLockedValueBox<[UInt8]>([])
    /// Watchers whose request was answered (the first bytes came back).
    let answered = NIOLockedValueBox(0)
    /// Called on the event loop when a watcher first sees the marker (a simulated agent acting on it).
    let onArrival = NIOLockedValueBox<(@Sendable (Int) -> Void)?>(nil)
    private var channels: [Channel] = []

    init(count: Int) { arrivals = NIOLockedValueBox([Double?](repeating: nil, count: count)) }

    /// Waits for `text` from now on: every watcher's arrival is cleared.
    func await(_ text: String) {
        arrivals.withLockedValue { $0 = [Double?](repeating: nil, count: $0.count) }
        marker.withLockedValue { $0 = Array(text.utf8) }
    }

    func connect(port: Int, requests: [String], group: EventLoopGroup) async throws {
        for (i, request) in requests.enumerated() {
            let handler = Handler(clients: self, index: i, request: request)
            let channel = try await ClientBootstrap(group: group).channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { $0.pipeline.addHandler(handler) }.connect(host: "127.0.0.1", port: port).get()
            channels.append(channel)
        }
    }

    func close() { for c in channels { c.close(promise: nil) } }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let clients: WatchClients
        let index: Int
        let request: String
        /// The end of the previous read, so that a marker split between two reads is found.
        var tail: [UInt8] = []
        var answered = false

        init(clients: WatchClients, index: Int, request: String) {
            self.clients = clients
            self.index = index
            self.request = request
        }

        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: request)), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            if !answered {
                answered = true
                clients.answered.withLockedValue { $0 += 1 }
            }
            let marker = clients.marker.withLockedValue { $0 }
            guard !marker.isEmpty else { return }
            let bytes = tail + Array(buffer.readableBytesView)
            if Self.contains(bytes, marker) {
                let t = now()
                let first = clients.arrivals.withLockedValue {
                    guard $0[index] == nil else { return false }
                    $0[index] = t
                    return true
                }
                if first, let act = clients.onArrival.withLockedValue({ $0 }) { act(index) }
            }
            tail = Array(bytes.suffix(marker.count))
        }

        static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
            guard haystack.count >= needle.count, let first = needle.first else { return false }
            var i = 0
            while i <= haystack.count - needle.count {
                if haystack[i] == first && haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
                i += 1
            }
            return false
        }
    }
}
