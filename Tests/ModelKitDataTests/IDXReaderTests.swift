import ModelKitCore
@testable import ModelKitData
import Testing

/// Reading a few records of an IDX file without decompressing the rest.
@Suite struct IDXReaderTests {
    /// 300 random 28x28 images: gzipped they still span several of the reader's 64 KiB input
    /// chunks, so partial reads cross chunk boundaries.
    static func randomImages(seed: UInt64 = 7) -> IDXFile {
        var state = seed
        let data = (0..<(300 * 28 * 28)).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        return IDXFile(dataType: .uint8, shape: [300, 28, 28], data: data)
    }

    @Test(arguments: [false, true])
    func recordsMatchTheWholeFile(gzip: Bool) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let file = Self.randomImages()
        let path = directory.file(gzip ? "images.gz" : "images")
        try file.write(to: path, gzip: gzip)
        #expect(try FileSystem.fileSize(path) > 3 << 16)
        let size = 28 * 28
        for records in [0..<1, 5..<9, 150..<151, 299..<300, 0..<300] {
            let reader = try IDXReader(path: path)
            #expect(reader.dataType == .uint8 && reader.shape == [300, 28, 28] && reader.count == 300)
            let bytes = try reader.readRecords(records)
            #expect(bytes == Array(file.data[(records.lowerBound * size)..<(records.upperBound * size)]))
        }
        // Forward reads continue where the last stopped, and the end is checked.
        let reader = try IDXReader(path: path)
        #expect(try reader.readRecords(2..<4) == Array(file.data[(2 * size)..<(4 * size)]))
        #expect(try reader.readRecords(4..<5) == Array(file.data[(4 * size)..<(5 * size)]))
        expectDataError("malformed", mentions: ["1..<2", "at 5"]) { _ = try reader.readRecords(1..<2) }
        try reader.expectEnd()
    }

    @Test func concatenatedGzipMembersReadAcrossTheJoin() throws {
        let reader = try IDXReader(path: fixture("idx/images-2members.gz"))
        #expect(try reader.readRecords(2..<3) == Array(IDXTests.expectedImages[40..<60]))
        try reader.expectEnd()
    }

    @Test func aTruncatedFileServesEarlyRecordsAndRejectsLateOnes() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let whole = try Deflate.deflate(Self.randomImages().encoded(), format: .gzip, level: 6)
        let path = directory.file("cut.gz")
        try FileSystem.writeFileAtomically(path, bytes: Array(whole[..<(whole.count / 2)]))
        let size = 28 * 28
        #expect(try IDXReader(path: path).readRecords(0..<1) == Array(Self.randomImages().data[0..<size]))
        expectDataError("truncated", mentions: [path]) { _ = try IDXReader(path: path).readRecords(299..<300) }
        expectDataError("truncated", mentions: [path]) { _ = try IDXFile.read(path) }
    }

    @Test func trailingGarbageIsFoundAtTheEnd() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let whole = try Deflate.deflate(Self.randomImages().encoded(), format: .gzip, level: 6)
        let path = directory.file("tail.gz")
        try FileSystem.writeFileAtomically(path, bytes: whole + [1, 2, 3])
        let reader = try IDXReader(path: path)
        _ = try reader.readRecords(0..<1)
        expectDataError("malformed", mentions: ["3 unexpected bytes"]) { try reader.expectEnd() }
    }

    @Test func headerErrorsMatchTheWholeFileReader() {
        expectDataError("file", mentions: ["/nonexistent/images.idx", "no such file"]) {
            _ = try IDXReader(path: "/nonexistent/images.idx")
        }
        var limits = DataLimits.default
        limits.maxDecodedBytes = 59
        expectDataError("tooLarge", mentions: ["[3x4x5]", "59"]) {
            _ = try IDXReader(path: fixture("idx/images-idx3-ubyte.gz"), limits: limits)
        }
        expectDataError("badMagic", mentions: ["01 02 03 04"]) { _ = try IDXReader([1, 2, 3, 4, 0, 0, 0, 1]) }
    }
}
