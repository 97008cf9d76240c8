import BGPEngine
import BGPRoutes
import BGPSession
import BGPWire
import BagpipeVPN
import Testing

/// Behaviours 50 and 51 of the original's unit tests (reference §12): the call sequences of its
/// tracker-worker cases, by name.
@Suite struct BestRouteTrackerTests {
    typealias Tracker = BestRouteTracker<String>
    typealias Call = Tracker.Call

    static let nlri1 = NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [42]), routeDistinguisher: .as2(64512, 1), prefix: IPPrefix(.v4(IPv4Address(10, 0, 0, 1)), length: 32))))
    static let nh1 = NextHop.ipv4(IPv4Address(192, 0, 2, 1)), nh2 = NextHop.ipv4(IPv4Address(192, 0, 2, 2))
    let a = 1, b = 2, c = 3

    func route(_ source: WorkerID, localPref: UInt32, nextHop: NextHop = nh1) -> RouteEngine.Route {
        let attributes = [PathAttribute(.origin(.igp)), PathAttribute(.localPreference(localPref)), PathAttribute(.extendedCommunities([.routeTarget(as: 64512, 1)]))]
        return RouteEngine.Route(family: .ipv4VPN, element: Self.nlri1, attributes: AttributeSet(attributes: attributes, nextHop: nextHop), source: source)
    }

    /// The original's test comparison: ECMP when next hops differ and LOCAL_PREF is equal.
    var tracker: Tracker { Tracker(compare: Tracker.ecmp) }

    @Test func behaviour50A1DifferentNLRISameSource() {
        var t = tracker
        let r1 = route(a, localPref: 100), r2 = RouteEngine.Route(family: .ipv4VPN, element: NLRIElement(.vpnPrefix(VPNPrefix(labels: MPLSLabelStack(labels: [42]), routeDistinguisher: .as2(64512, 1), prefix: IPPrefix(.v4(IPv4Address(10, 0, 0, 2)), length: 32)))), attributes: route(a, localPref: 100).attributes, source: a)
        var calls = t.advertise(r1, replaced: nil, entry: "1") + t.advertise(r2, replaced: nil, entry: "2")
        calls += t.withdraw(r1, entry: "1") + t.withdraw(r2, entry: "2")
        #expect(calls == [.newBest("1", r1), .newBest("2", r2), .bestRemoved("1", r1, last: true), .bestRemoved("2", r2, last: true)])
    }

    @Test func behaviour50A4WithdrawOfAnUnknownRouteDoesNothing() {
        var t = tracker
        #expect(t.withdraw(route(a, localPref: 100), entry: "1").isEmpty)
    }

    @Test func behaviour50B1AnEquivalentRouteFromAnotherSourceCountsOnce() {
        var t = tracker
        let ra = route(a, localPref: 100), rb = route(b, localPref: 100)
        #expect(t.advertise(ra, replaced: nil, entry: "1") == [.newBest("1", ra)])
        #expect(t.advertise(rb, replaced: nil, entry: "1").isEmpty)
        #expect(t.withdraw(ra, entry: "1").isEmpty)
        #expect(t.withdraw(rb, entry: "1") == [.bestRemoved("1", rb, last: true)])
    }

    @Test func behaviour50B2NewBestBeforeRemovalOfTheOld() {
        var t = tracker
        let r1 = route(a, localPref: 300), r2 = route(b, localPref: 200), r2c = route(c, localPref: 200)
        #expect(t.advertise(r1, replaced: nil, entry: "1") == [.newBest("1", r1)])
        #expect(t.advertise(r2, replaced: nil, entry: "1").isEmpty)
        #expect(t.advertise(r2c, replaced: nil, entry: "1").isEmpty)
        #expect(t.withdraw(r1, entry: "1") == [.newBest("1", r2), .bestRemoved("1", r1, last: false)])
    }

    @Test func behaviour50C1c2c3BestRouteSelection() {
        var t = tracker
        let r300 = route(a, localPref: 300), r200 = route(b, localPref: 200), r100 = route(c, localPref: 100)
        #expect(t.advertise(r300, replaced: nil, entry: "1") == [.newBest("1", r300)])
        #expect(t.advertise(r200, replaced: nil, entry: "1").isEmpty)
        #expect(t.advertise(r100, replaced: nil, entry: "1").isEmpty)
        #expect(t.withdraw(r300, entry: "1") == [.newBest("1", r200), .bestRemoved("1", r300, last: false)])
        #expect(t.withdraw(r200, entry: "1") == [.newBest("1", r100), .bestRemoved("1", r200, last: false)])
        #expect(t.withdraw(r100, entry: "1") == [.bestRemoved("1", r100, last: true)])
        // c2: a better route arriving replaces the best at once.
        var u = tracker
        let low = route(a, localPref: 100), high = route(b, localPref: 200)
        _ = u.advertise(low, replaced: nil, entry: "1")
        #expect(u.advertise(high, replaced: nil, entry: "1") == [.newBest("1", high), .bestRemoved("1", low, last: false)])
        #expect(u.withdraw(low, entry: "1").isEmpty)
    }

    @Test func behaviour50D1ECMPRoutesAreAllBest() {
        var t = tracker
        let r1 = route(a, localPref: 100, nextHop: Self.nh1), r2 = route(a, localPref: 100, nextHop: Self.nh2)
        #expect(t.advertise(r1, replaced: nil, entry: "1") == [.newBest("1", r1)])
        #expect(t.advertise(r2, replaced: nil, entry: "1") == [.newBest("1", r2)])
        #expect(t.bestRoutes("1").count == 2)
        #expect(t.withdraw(r1, entry: "1") == [.bestRemoved("1", r1, last: false)])
        #expect(t.withdraw(r2, entry: "1") == [.bestRemoved("1", r2, last: true)])
    }

    @Test func behaviour50E1e2ReplacementOfTheBestRoute() {
        var t = tracker
        let r1 = route(a, localPref: 200), r2 = route(a, localPref: 100)
        _ = t.advertise(r1, replaced: nil, entry: "1")
        #expect(t.advertise(r2, replaced: r1, entry: "1") == [.newBest("1", r2), .bestRemoved("1", r1, last: false)])
        // e2: the replacement is not the new best; another source's route is.
        var u = tracker
        let a300 = route(a, localPref: 300), b200 = route(b, localPref: 200), a100 = route(a, localPref: 100)
        _ = u.advertise(a300, replaced: nil, entry: "1")
        _ = u.advertise(b200, replaced: nil, entry: "1")
        #expect(u.advertise(a100, replaced: a300, entry: "1") == [.newBest("1", b200), .bestRemoved("1", a300, last: false)])
        #expect(u.withdraw(b200, entry: "1") == [.newBest("1", a100), .bestRemoved("1", b200, last: false)])
    }

    @Test func behaviour51HigherLocalPreferenceWinsInBothComparisons() {
        let low = route(a, localPref: 100), high = route(b, localPref: 200)
        for compare in [Tracker.ecmp, Tracker.single(salt: "host-a|EVI-1")] {
            #expect(compare(high, low) > 0 && compare(low, high) < 0)
        }
        // Without ECMP, equal LOCAL_PREF still gives one best, the same on every run.
        let single = Tracker.single(salt: "host-a|EVI-1")
        let x = route(a, localPref: 100, nextHop: Self.nh1), y = route(b, localPref: 100, nextHop: Self.nh2)
        #expect(single(x, y) != 0 && single(x, y) == -single(y, x))
        var t = Tracker(compare: single)
        _ = t.advertise(x, replaced: nil, entry: "1")
        _ = t.advertise(y, replaced: nil, entry: "1")
        #expect(t.bestRoutes("1").count == 1)
    }
}
