// Reads packets from pcap and pcapng files. Only what a BGP decoder needs: timestamps are not kept.

/// One captured packet: its frame number (1-based, as Wireshark counts) and link-layer bytes.
public struct CapturedPacket: Sendable {
    public var frame: Int
    public var linkType: UInt32
    public var data: ArraySlice<UInt8>
}

public struct CaptureError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
    public static func make(_ description: String) -> CaptureError { CaptureError(description) }
}

/// Parses a whole capture file held in memory.
public enum CaptureFile {
    public static func packets(in bytes: [UInt8]) throws -> [CapturedPacket] {
        guard bytes.count >= 4 else { throw CaptureError("file too short to be a capture") }
        let magic = UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])
        switch magic {
        case 0xA1B2_C3D4, 0xA1B2_3C4D: return try pcap(bytes, bigEndian: true)
        case 0xD4C3_B2A1, 0x4D3C_B2A1: return try pcap(bytes, bigEndian: false)
        case 0x0A0D_0D0A: return try pcapng(bytes)
        default: throw CaptureError("not a pcap or pcapng file (magic 0x\(String(magic, radix: 16)))")
        }
    }

    public static func isCapture(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 4 else { return false }
        let head = Array(bytes[0..<4])
        return [[0xA1, 0xB2, 0xC3, 0xD4], [0xD4, 0xC3, 0xB2, 0xA1], [0xA1, 0xB2, 0x3C, 0x4D], [0x4D, 0x3C, 0xB2, 0xA1], [0x0A, 0x0D, 0x0D, 0x0A]]
            .contains(head)
    }

    static func u32(_ b: [UInt8], _ at: Int, bigEndian: Bool) -> UInt32? {
        guard at >= 0, at + 4 <= b.count else { return nil }
        let v = UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
        return bigEndian ? v : v.byteSwapped
    }

    static func u16(_ b: [UInt8], _ at: Int, bigEndian: Bool) -> UInt16? {
        guard at >= 0, at + 2 <= b.count else { return nil }
        let v = UInt16(b[at]) << 8 | UInt16(b[at + 1])
        return bigEndian ? v : v.byteSwapped
    }

    static func pcap(_ b: [UInt8], bigEndian: Bool) throws -> [CapturedPacket] {
        guard let linkType = u32(b, 20, bigEndian: bigEndian) else { throw CaptureError("truncated pcap header") }
        var packets: [CapturedPacket] = []
        var offset = 24
        var frame = 0
        while offset + 16 <= b.count {
            guard let captured = u32(b, offset + 8, bigEndian: bigEndian) else { break }
            let start = offset + 16
            frame += 1
            // A record cut short by the end of the file keeps what there is.
            let end = min(start + Int(captured), b.count)
            packets.append(CapturedPacket(frame: frame, linkType: linkType & 0xFFFF, data: b[start..<end]))
            offset = start + Int(captured)
        }
        return packets
    }

    static func pcapng(_ b: [UInt8]) throws -> [CapturedPacket] {
        var packets: [CapturedPacket] = []
        var offset = 0
        var bigEndian = true
        var linkTypes: [UInt32] = []
        var frame = 0
        while offset + 12 <= b.count {
            var type = u32(b, offset, bigEndian: bigEndian) ?? 0
            if type == 0x0A0D_0D0A {
                // Section header: the byte-order magic decides how the rest of the section reads.
                guard let bom = u32(b, offset + 8, bigEndian: true) else { break }
                bigEndian = bom == 0x1A2B_3C4D
                linkTypes = []
                type = 0x0A0D_0D0A
            }
            guard let length = u32(b, offset + 4, bigEndian: bigEndian), length >= 12, offset + Int(length) <= b.count else { break }
            let body = offset + 8
            switch type {
            case 1:
                linkTypes.append(UInt32(u16(b, body, bigEndian: bigEndian) ?? 0))
            case 6:
                guard let interface = u32(b, body, bigEndian: bigEndian), let captured = u32(b, body + 12, bigEndian: bigEndian) else { break }
                frame += 1
                let start = body + 20
                let end = min(start + Int(captured), offset + Int(length))
                let link = Int(interface) < linkTypes.count ? linkTypes[Int(interface)] : 1
                packets.append(CapturedPacket(frame: frame, linkType: link, data: b[start..<max(start, end)]))
            case 3:
                guard let original = u32(b, body, bigEndian: bigEndian) else { break }
                frame += 1
                let start = body + 4
                let end = min(start + Int(original), offset + Int(length) - 4)
                packets.append(CapturedPacket(frame: frame, linkType: linkTypes.first ?? 1, data: b[start..<max(start, end)]))
            case 2:
                frame += 1  // obsolete packet block: counted, not parsed
            default: break
            }
            offset += Int(length)
        }
        return packets
    }
}
