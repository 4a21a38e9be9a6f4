import ModelKitCore
@testable import ModelKitData
import Testing

@Suite struct DeflateTests {
    static let sample: [UInt8] = Array(repeating: Array("modelkit reads datasets. ".utf8), count: 200).flatMap { $0 }
        + pseudoRandomBytes(3000, seed: 7)

    @Test(arguments: [CompressionFormat.zlib, .gzip, .rawDeflate], [0, 1, 9])
    func roundTrip(format: CompressionFormat, level: Int) throws {
        let compressed = try Deflate.deflate(Self.sample, format: format, level: level)
        #expect(Deflate.isGzip(compressed) == (format == .gzip))
        #expect(try Deflate.inflate(compressed, format: format, limit: 1 << 20) == Self.sample)
        if format != .rawDeflate {
            // Auto-detection handles both gzip and zlib.
            #expect(try Deflate.inflate(compressed, limit: 1 << 20) == Self.sample)
        }
        if level == 9 { #expect(compressed.count < Self.sample.count) }
    }

    @Test func emptyInputRoundTrips() throws {
        let compressed = try Deflate.deflate([], format: .gzip)
        #expect(try Deflate.inflate(compressed, limit: 0) == [])
    }

    @Test func outputCapIsExact() throws {
        let zeros = [UInt8](repeating: 0, count: 10_000)
        let compressed = try Deflate.deflate(zeros, format: .gzip, level: 9)
        #expect(try Deflate.inflate(compressed, limit: 10_000).count == 10_000)
        expectDataError("tooLarge", mentions: ["bomb.gz", "9999"]) {
            _ = try Deflate.inflate(compressed, limit: 9_999, name: "bomb.gz")
        }
    }

    @Test func truncatedStreamIsReported() throws {
        let compressed = try Deflate.deflate(Self.sample, format: .gzip)
        for cut in [1, 8, compressed.count / 2, compressed.count - 1] {
            expectDataError("truncated", mentions: ["cut.gz"]) {
                _ = try Deflate.inflate(Array(compressed.prefix(compressed.count - cut)), limit: 1 << 20, name: "cut.gz")
            }
        }
    }

    @Test func badChecksumAndGarbage() throws {
        var compressed = try Deflate.deflate(Self.sample, format: .gzip)
        compressed[compressed.count - 6] ^= 0x40  // CRC-32 trailer
        expectDataError("badCompressedData", mentions: ["x.gz"]) {
            _ = try Deflate.inflate(compressed, limit: 1 << 20, name: "x.gz")
        }
        expectDataError("badCompressedData") {
            _ = try Deflate.inflate([0x78, 0x9c, 0xff, 0xff, 0xff, 0xff], format: .zlib, limit: 100)
        }
        let good = try Deflate.deflate(Self.sample, format: .gzip)
        expectDataError("malformed", mentions: ["3 unexpected bytes"]) {
            _ = try Deflate.inflate(good + [1, 2, 3], limit: 1 << 20)
        }
    }

    @Test func concatenatedGzipMembersAreJoined() throws {
        let a = try Deflate.deflate(Array(Self.sample.prefix(100)), format: .gzip)
        let b = try Deflate.deflate(Array(Self.sample.dropFirst(100)), format: .gzip)
        #expect(try Deflate.inflate(a + b, limit: 1 << 20) == Self.sample)
    }

    @Test func crc32CheckValue() {
        #expect(Deflate.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(Deflate.crc32(Array("6789".utf8), continuing: Deflate.crc32(Array("12345".utf8))) == 0xCBF4_3926)
    }

    @Test func maxExpansionSaturates() {
        #expect(Deflate.maxExpansion(ofCompressedCount: 10) == 10 * 1032 + 1024)
        #expect(Deflate.maxExpansion(ofCompressedCount: Int.max / 2) == Int.max)
    }
}
