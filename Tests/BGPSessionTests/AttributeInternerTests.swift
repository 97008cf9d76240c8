import BGPRoutes
import BGPSession
import BGPWire
import Testing

/// One interner per speaker, shared by its Adj-RIBs-In and its route engine: equal attributes are
/// one object whoever stored them, and each owner's uses are counted so that a set goes only when
/// the last owner lets go.
@Suite struct AttributeInternerTests {
    typealias Fixture = PeerRoutesTests

    @Test func twoAdjRIBsInShareOneSetForEqualAttributes() throws {
        let interner = AttributeInterner()
        var first = AdjRIBIn(interner: interner), second = AdjRIBIn(interner: interner)
        _ = first.apply(try Fixture.announcing([1, 2]))
        _ = second.apply(try Fixture.announcing([3]))
        #expect(interner.count == 1)
        let a = try #require(first.tables[Fixture.family]?.values.first?.attributes)
        let b = try #require(second.tables[Fixture.family]?.values.first?.attributes)
        #expect(a === b)
        // One peer's session goes down: the other still holds the set.
        _ = first.clear()
        #expect(interner.count == 1)
        _ = second.clear()
        #expect(interner.count == 0)
    }

    @Test func theEngineTakesAStoredSetWithoutCopyingIt() throws {
        let interner = AttributeInterner()
        var ribIn = AdjRIBIn(interner: interner)
        let changes = ribIn.apply(try Fixture.announcing([1]))
        guard case .announce(_, _, let stored)? = changes[Fixture.family]?.first else { throw Fixture.Unexpected() }
        // What the engine does with a received route: intern its set (a use of its own).
        let engineCopy = interner.intern(stored)
        #expect(engineCopy === stored)
        _ = ribIn.withdraw(try Fixture.announcing([1]).announced)
        #expect(interner.count == 1, "the engine still uses the set")
        interner.release(engineCopy)
        #expect(interner.count == 0)
    }

    @Test func anEqualSetFromElsewhereBecomesTheSharedOne() throws {
        let interner = AttributeInterner()
        let attributes = [PathAttribute(.origin(.igp)), PathAttribute(.localPreference(100))]
        let shared = interner.intern(attributes: attributes, nextHop: .ipv4(IPv4Address(192, 0, 2, 9)))
        let other = AttributeSet(attributes: attributes, nextHop: .ipv4(IPv4Address(192, 0, 2, 9)))
        #expect(interner.intern(other) === shared)
        let different = interner.intern(attributes: attributes, nextHop: .ipv4(IPv4Address(192, 0, 2, 10)))
        #expect(different !== shared)
        #expect(interner.count == 2)
        interner.release(shared)
        #expect(interner.count == 2, "one use of the shared set is left")
        interner.release(shared)
        interner.release(different)
        #expect(interner.count == 0)
    }
}

extension AttributeInternerTests {
    @Test func routesAnnouncedAgainKeepTheirSet() throws {
        let interner = AttributeInterner()
        var ribIn = AdjRIBIn(interner: interner)
        _ = ribIn.apply(try Fixture.announcing([1]))
        _ = ribIn.apply(try Fixture.announcing([1]))
        _ = ribIn.apply(try Fixture.announcing([1, 2, 3]))
        #expect(interner.count == 1)
        _ = ribIn.withdraw(try Fixture.announcing([1, 2]).announced)
        #expect(interner.count == 1, "route 3 still uses the set")
        _ = ribIn.withdraw(try Fixture.announcing([3]).announced)
        #expect(interner.count == 0)
    }
}
