import ModelKitCore
@testable import ModelKitData
import Testing

@Suite struct PNGTests {
    /// Each PNG fixture (made by Pillow or by the independent writer in Tools/make-data-fixtures.py,
    /// then checked with Pillow) against the pixels numpy says it holds.
    @Test(arguments: [
        "gray8", "graya8", "rgb8", "rgba8", "palette8", "palette4", "palette2", "gray1", "gray2", "gray4",
        "gray16", "graya16", "rgb16", "rgb8-filters", "rgba8-filters", "rgb8-adam7", "gray4-adam7", "gray8-adam7-tiny",
    ])
    func decodesGoldenImages(name: String) throws {
        let image = try PNG.read(fixture("png/\(name).png"))
        let expected = try NpyArray.read(fixture("png/\(name).expected.npy"))
        #expect(expected.dtype == .uint8 && expected.shape.rank == 3)
        #expect(image.height == expected.shape[0])
        #expect(image.width == expected.shape[1])
        #expect(image.channels == expected.shape[2])
        #expect(image.pixels.map(Float.init) == expected.values)
    }

    static func gradient(width: Int, height: Int, channels: Int) -> Image {
        var pixels: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels { pixels.append(UInt8(truncatingIfNeeded: x * 7 + y * 13 + c * 101)) }
            }
        }
        return Image(width: width, height: height, channels: channels, pixels: pixels)
    }

    @Test(arguments: [1, 3], [0, 6, 9])
    func writeReadRoundTrip(channels: Int, level: Int) throws {
        let image = Self.gradient(width: 37, height: 23, channels: channels)
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try PNG.write(image, to: directory.file("a.png"), compressionLevel: level)
        let back = try PNG.read(directory.file("a.png"))
        #expect(back == image)
        #expect(back[x: 36, y: 22, channel: channels - 1] == image.pixels.last)
    }

    @Test func storedBlocksAreUncompressed() throws {
        let image = Image(width: 64, height: 64, channels: 1, pixels: pseudoRandomBytes(4096, seed: 3))
        let stored = try PNG.encode(image, compressionLevel: 0)
        #expect(stored.count > 64 * 65)
        #expect(try PNG.decode(stored) == image)
    }

    @Test func largeImageSpansSeveralIDATChunks() throws {
        let image = Image(width: 1200, height: 1000, channels: 3, pixels: pseudoRandomBytes(3_600_000, seed: 11))
        let bytes = try PNG.encode(image, compressionLevel: 1)
        #expect(bytes.count > 1 << 21)
        #expect(try PNG.decode(bytes) == image)
    }

    @Test func writerRejectsBadImages() {
        expectDataError("unsupported", mentions: ["2"]) {
            _ = try PNG.encode(Image(width: 1, height: 1, channels: 2, pixels: [0, 0]))
        }
        expectDataError("countMismatch") { _ = try PNG.encode(Image(width: 2, height: 2, channels: 1, pixels: [0, 0, 0])) }
        expectDataError("unsupported") { _ = try PNG.encode(Image(width: 0, height: 2, channels: 1, pixels: [])) }
    }

    @Test func pixelAndSideLimits() {
        var limits = DataLimits.default
        limits.maxImagePixels = 34
        expectDataError("tooLarge", mentions: ["7×5", "34 pixels"]) { _ = try PNG.read(fixture("png/gray8.png"), limits: limits) }
        limits = .default
        limits.maxImageSide = 6
        expectDataError("tooLarge", mentions: ["7×5", "6 per side"]) { _ = try PNG.read(fixture("png/gray8.png"), limits: limits) }
        limits = .default
        limits.maxDecodedBytes = 34
        expectDataError("tooLarge", mentions: ["limit of 34 bytes"]) { _ = try PNG.read(fixture("png/gray8.png"), limits: limits) }
    }

    /// Rebuilds a PNG from chunks with correct CRCs, to test chunk-order rules.
    static func png(_ chunks: [(String, [UInt8])]) -> [UInt8] {
        var bytes = PNG.signature
        for (type, data) in chunks {
            let typeBytes = Array(type.utf8)
            let crc = Deflate.crc32(typeBytes + data)
            bytes += [UInt8(data.count >> 24), UInt8(data.count >> 16 & 0xff), UInt8(data.count >> 8 & 0xff), UInt8(data.count & 0xff)]
            bytes += typeBytes + data
            bytes += [UInt8(crc >> 24), UInt8(crc >> 16 & 0xff), UInt8(crc >> 8 & 0xff), UInt8(crc & 0xff)]
        }
        return bytes
    }

    static let ihdr2x1Gray: [UInt8] = [0, 0, 0, 2, 0, 0, 0, 1, 8, 0, 0, 0, 0]

    @Test func chunkRules() throws {
        let idat = try Deflate.deflate([0, 10, 20])
        #expect(try PNG.decode(Self.png([("IHDR", Self.ihdr2x1Gray), ("IDAT", idat), ("IEND", [])])).pixels == [10, 20])
        // Ancillary chunks are skipped; unknown critical chunks are not.
        #expect(try PNG.decode(Self.png([("IHDR", Self.ihdr2x1Gray), ("abCd", [1]), ("IDAT", idat), ("IEND", [])])).pixels == [10, 20])
        expectDataError("unsupported", mentions: ["ABCD"]) {
            _ = try PNG.decode(Self.png([("IHDR", Self.ihdr2x1Gray), ("ABCD", [1]), ("IDAT", idat), ("IEND", [])]))
        }
        let half = [UInt8](idat.prefix(4)), rest = [UInt8](idat.dropFirst(4))
        #expect(try PNG.decode(Self.png([("IHDR", Self.ihdr2x1Gray), ("IDAT", half), ("IDAT", rest), ("IEND", [])])).pixels == [10, 20])
        expectDataError("malformed", mentions: ["not consecutive"]) {
            _ = try PNG.decode(Self.png([("IHDR", Self.ihdr2x1Gray), ("IDAT", half), ("tEXt", [65]), ("IDAT", rest), ("IEND", [])]))
        }
        expectDataError("malformed", mentions: ["no IDAT"]) { _ = try PNG.decode(Self.png([("IHDR", Self.ihdr2x1Gray), ("IEND", [])])) }
        expectDataError("malformed", mentions: ["second IHDR"]) {
            _ = try PNG.decode(Self.png([("IHDR", Self.ihdr2x1Gray), ("IHDR", Self.ihdr2x1Gray), ("IDAT", idat), ("IEND", [])]))
        }
        expectDataError("malformed", mentions: ["IHDR length"]) { _ = try PNG.decode(Self.png([("IHDR", [0, 0, 0, 1])])) }
        expectDataError("malformed", mentions: ["PLTE chunk in a grayscale"]) {
            _ = try PNG.decode(Self.png([("IHDR", Self.ihdr2x1Gray), ("PLTE", [1, 2, 3]), ("IDAT", idat), ("IEND", [])]))
        }
        var palette = Self.ihdr2x1Gray
        palette[9] = 3
        expectDataError("malformed", mentions: ["without a PLTE"]) {
            _ = try PNG.decode(Self.png([("IHDR", palette), ("IDAT", idat), ("IEND", [])]))
        }
        var zeroWidth = Self.ihdr2x1Gray
        zeroWidth[3] = 0
        expectDataError("malformed", mentions: ["0×1"]) { _ = try PNG.decode(Self.png([("IHDR", zeroWidth), ("IEND", [])])) }
        var interlace2 = Self.ihdr2x1Gray
        interlace2[12] = 2
        expectDataError("unsupported", mentions: ["interlace method 2"]) { _ = try PNG.decode(Self.png([("IHDR", interlace2)])) }
        var depth3 = Self.ihdr2x1Gray
        depth3[8] = 3
        expectDataError("unsupported", mentions: ["bit depth 3"]) { _ = try PNG.decode(Self.png([("IHDR", depth3)])) }
        // Extra image data beyond what the header implies.
        expectDataError("countMismatch") {
            _ = try PNG.decode(Self.png([("IHDR", Self.ihdr2x1Gray), ("IDAT", try Deflate.deflate([0, 10, 20, 0])), ("IEND", [])]))
        }
    }
}

/// Every file under Fixtures/data/corrupt must fail with the expected kind of `DataError` (never a
/// trap, never success), and the message must name the file.
@Suite struct CorruptInputTests {
    @Test(arguments: [
        ("truncated.idx.gz", "truncated"),
        ("bad-gzip-crc.idx.gz", "badCompressedData"),
        ("wrong-magic.idx", "badMagic"),
        ("bad-type.idx", "unsupported"),
        ("huge-dims-overflow.idx", "tooLarge"),
        ("huge-dims.idx", "tooLarge"),
        ("huge-dims-small.idx.gz", "truncated"),
        ("short-data.idx", "truncated"),
        ("extra-data.idx", "countMismatch"),
        ("not-a-tuple.npy", "malformed"),
        ("unknown-key.npy", "malformed"),
        ("fortran.npy", "unsupported"),
        ("complex.npy", "unsupported"),
        ("big-endian.npy", "unsupported"),
        ("truncated.npy", "truncated"),
        ("bad-magic.npy", "badMagic"),
        ("huge-shape.npy", "tooLarge"),
        ("bad-crc.png", "badChecksum"),
        ("truncated.png", "truncated"),
        ("no-iend.png", "truncated"),
        ("not-png.png", "badMagic"),
        ("huge-side.png", "tooLarge"),
        ("huge-declared.png", "truncated"),
        ("bad-zlib.png", "badCompressedData"),
        ("bad-filter.png", "malformed"),
        ("short-image-data.png", "truncated"),
        ("bad-color-type.png", "unsupported"),
        ("palette-index.png", "malformed"),
        ("idat-first.png", "malformed"),
    ])
    func corruptFileIsRejected(name: String, expectedKind: String) {
        let path = fixture("corrupt/" + name)
        expectDataError(expectedKind, mentions: [path]) {
            if name.hasSuffix(".png") {
                _ = try PNG.read(path)
            } else if name.hasSuffix(".npy") {
                _ = try NpyArray.read(path)
            } else {
                _ = try IDXFile.read(path)
            }
        }
    }

    /// Every prefix and every single-byte corruption of a small PNG, .npy and IDX file either
    /// decodes or throws a DataError — nothing else.
    @Test(arguments: ["png/rgb8-adam7.png", "png/palette4.png", "npy/f4.npy", "idx/images-idx3-ubyte.gz"])
    func prefixesAndBitFlipsNeverTrap(name: String) throws {
        let bytes = try FileSystem.readFile(fixture(name))
        func attempt(_ data: [UInt8]) {
            do {
                if name.hasSuffix(".png") { _ = try PNG.decode(data) }
                else if name.hasSuffix(".npy") { _ = try NpyArray.decode(data) }
                else { _ = try IDXFile.decode(data) }
            } catch is DataError {
            } catch {
                Issue.record("\(name): non-DataError \(error)")
            }
        }
        for length in 0..<bytes.count { attempt(Array(bytes.prefix(length))) }
        for index in 0..<bytes.count {
            var flipped = bytes
            flipped[index] ^= 0x5A
            attempt(flipped)
        }
    }
}
