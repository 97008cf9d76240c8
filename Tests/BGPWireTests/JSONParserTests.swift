import BGPWire
import Testing

/// The order-keeping JSON parser of the REST API and the tools.
@Suite struct JSONParserTests {
    @Test func keepsKeyOrderAndKinds() throws {
        let v = try JSONValue(parsing: #" {"b": 1, "a": [true, null, 1.5, -2e3, "x\u00e9\ud83d\ude00\n"], "c": {}} "#)
        guard case .object(let fields) = v else { Issue.record("not an object"); return }
        #expect(fields.map(\.0) == ["b", "a", "c"])
        #expect(v["b"] == .int(1) && v["c"] == .object([]))
        #expect(v["a"] == .array([.bool(true), .null, .double(1.5), .double(-2000), .string("xé😀\n")]))
        #expect(try JSONValue(parsing: #"{"k": 1, "k": 2}"#) == .object([("k", .int(2))]), "a repeated key keeps its last value")
        #expect(try JSONValue(parsing: "9223372036854775807") == .int(.max))
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "\"\u{1}\"", "tru", "{} {}", "\"\\ud800\"", "[1] x", "nul", "{\"a\":}"])
    func rejectsMalformedInput(text: String) {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue(parsing: text) }
    }

    @Test func limitsNesting() throws {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONValue.ParseError.self) { try JSONValue(parsing: deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: Never.self) { try JSONValue(parsing: fine) }
        #expect(throws: JSONValue.ParseError.self) { try JSONValue(parsing: [0x22, 0xFF, 0x22]) }
    }
}
