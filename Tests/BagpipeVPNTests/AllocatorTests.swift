import BagpipeVPN
import Dataplane
import Testing

/// Behaviours 55 and 56 of the original's unit tests (reference §12).
@Suite struct AllocatorTests {
    @Test func behaviour55IdsAreUniqueAndReleasedIdsAreNotReusedAtOnce() throws {
        var a = IdentifierAllocator(name: "test", range: 10...14)
        let first = try (0..<3).map { _ in try a.allocate() }
        #expect(first == [10, 11, 12])
        let (once, twice) = (a.release(11), a.release(11))
        #expect(once)
        #expect(!twice, "a second release is refused")
        #expect(try a.allocate() == 13, "11 is not reused while fresh values remain")
        #expect(try a.allocate() == 14)
    }

    @Test func behaviour55ReleasedIdsAreReusedAfterTheWrapOldestFirst() throws {
        var a = IdentifierAllocator(name: "test", range: 0...3)
        for _ in 0...3 { _ = try a.allocate() }
        a.release(2)
        a.release(0)
        a.release(3)
        #expect(try a.allocate() == 2)
        #expect(try a.allocate() == 0)
        #expect(try a.allocate() == 3)
    }

    @Test func behaviour55HintHonouredWhenFreeElseNextFree() throws {
        var a = IdentifierAllocator(name: "test", range: 0...9)
        #expect(try a.allocate(hint: 5) == 5)
        #expect(try a.allocate() == 0, "a hint ahead of the counter does not move it")
        #expect(try a.allocate(hint: 5) == 1, "taken: the next free value")
        #expect(try a.allocate(hint: 2) == 2, "a hint equal to the counter advances it")
        #expect(try a.allocate() == 3)
        #expect(try a.allocate() == 4)
        #expect(try a.allocate() == 6, "5, taken by the hint, is skipped")
        #expect(try a.allocate(hint: 42) == 7, "out of range: ignored")
    }

    @Test func behaviour55ExhaustionIsAnError() throws {
        var a = IdentifierAllocator(name: "label", range: 16...17)
        _ = try a.allocate()
        _ = try a.allocate()
        #expect(throws: AllocatorExhausted(name: "label", range: 16...17)) { try a.allocate() }
        a.release(16)
        #expect(try a.allocate() == 16)
    }

    @Test func instanceIdsAreNeverReused() throws {
        var a = IdentifierAllocator(name: "VPN instance id", range: 1...2, reuses: false)
        let one = try a.allocate()
        _ = try a.allocate()
        a.release(one)
        #expect(throws: AllocatorExhausted.self) { try a.allocate() }
        #expect(throws: AllocatorExhausted.self) { try a.allocate(hint: one) }
    }

    @Test func standardRanges() throws {
        var labels = IdentifierAllocator.labels()
        #expect(try labels.allocate() == 16 && labels.range.upperBound == (1 << 20) - 1)
        var rds = IdentifierAllocator.routeDistinguishers()
        #expect(try rds.allocate() == 0 && rds.range.upperBound == 65535)
        var ids = IdentifierAllocator.instanceIDs()
        #expect(try ids.allocate() == 1)
    }

    @Test func behaviour56ObjectCreatedOnFirstUserSharedAndDeletedWithTheLast() {
        var tunnels = SharedObjects<String, Int, String>()
        var created = 0
        let a = tunnels.acquire("192.0.2.2", by: 1) { created += 1; return "tun-1" }
        let b = tunnels.acquire("192.0.2.2", by: 2) { created += 1; return "tun-2" }
        #expect(a == "tun-1" && b == "tun-1" && created == 1)
        let byOne = tunnels.release("192.0.2.2", by: 1)
        let byStranger = tunnels.release("192.0.2.2", by: 3)
        let byLast = tunnels.release("192.0.2.2", by: 2)
        #expect(byOne == nil, "still used by 2")
        #expect(byStranger == nil, "3 never used it")
        #expect(byLast == "tun-1", "the last user: deleted")
        #expect(tunnels.keys.isEmpty)
    }
}
