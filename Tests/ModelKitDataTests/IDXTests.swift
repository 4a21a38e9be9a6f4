import ModelKitCore
@testable import ModelKitData
import Testing

@Suite struct IDXTests {
    /// The fixture images are (i * 37) mod 256 over [3, 4, 5]; labels are [7, 0, 9].
    static let expectedImages: [UInt8] = (0..<60).map { UInt8($0 * 37 % 256) }

    @Test(arguments: ["idx/images-idx3-ubyte", "idx/images-idx3-ubyte.gz", "idx/images-2members.gz"])
    func readsImages(path: String) throws {
        let file = try IDXFile.read(fixture(path))
        #expect(file.dataType == .uint8)
        #expect(file.shape == [3, 4, 5])
        #expect(file.data == Self.expectedImages)
        #expect(file.floatValues() == Self.expectedImages.map(Float.init))
    }

    @Test func readsDatasetPairsRawAndGzipped() throws {
        let raw = try IDXDataset.load(images: fixture("idx/images-idx3-ubyte"), labels: fixture("idx/labels-idx1-ubyte"))
        let gz = try IDXDataset.load(images: fixture("idx/images-idx3-ubyte.gz"), labels: fixture("idx/labels-idx1-ubyte.gz"))
        #expect(raw == gz)
        #expect(raw.count == 3 && raw.rows == 4 && raw.columns == 5)
        #expect((0..<3).map(raw.label) == [7, 0, 9])
        #expect(Array(raw.image(1)) == Array(Self.expectedImages[20..<40]))
    }

    @Test func otherElementTypes() throws {
        let i16 = try IDXFile.read(fixture("idx/i16.idx"))
        #expect(i16.dataType == .int16 && i16.shape == [2, 3])
        #expect(i16.floatValues() == [-32768, -1, 0, 1, 300, 32767])
        let f32 = try IDXFile.read(fixture("idx/f32.idx"))
        #expect(f32.dataType == .float32 && f32.floatValues() == [1.5, -2.25, 1e-3])
        let f64 = try IDXFile.read(fixture("idx/f64.idx"))
        #expect(f64.dataType == .float64 && f64.shape == [2, 1] && f64.floatValues() == [Float(0.1), -7])
    }

    @Test(arguments: [false, true])
    func writeReadRoundTrip(gzip: Bool) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let file = IDXFile(dataType: .int32, shape: [2, 2], data: [0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe, 0x7f, 0, 0, 0, 0, 0, 1, 0])
        try file.write(to: directory.file("x.idx"), gzip: gzip)
        let bytes = try FileSystem.readFile(directory.file("x.idx"))
        #expect(Deflate.isGzip(bytes) == gzip)
        let back = try IDXFile.read(directory.file("x.idx"))
        #expect(back == file)
        #expect(back.floatValues() == [1, -2, 2_130_706_432, 256])
    }

    @Test func encodeRejectsInconsistentFiles() {
        expectDataError("countMismatch") { _ = try IDXFile(dataType: .uint8, shape: [2, 2], data: [1, 2, 3]).encoded() }
        expectDataError("unsupported") { _ = try IDXFile(dataType: .uint8, shape: [], data: [1]).encoded() }
    }

    @Test func countMismatchNamesBothFiles() {
        let images = fixture("idx/images-idx3-ubyte"), labels = fixture("idx/labels-2-idx1-ubyte")
        expectDataError("countMismatch", mentions: [images, labels, "2 labels", "3 images"]) {
            _ = try IDXDataset.load(images: images, labels: labels)
        }
    }

    @Test func datasetRejectsWrongRanksAndTypes() {
        let images = fixture("idx/images-idx3-ubyte"), labels = fixture("idx/labels-idx1-ubyte")
        expectDataError("unsupported", mentions: ["rank 3"]) { _ = try IDXDataset.load(images: labels, labels: labels) }
        expectDataError("unsupported", mentions: ["rank 1"]) { _ = try IDXDataset.load(images: images, labels: images) }
        expectDataError("unsupported", mentions: ["i16"]) {
            _ = try IDXDataset.load(images: images, labels: fixture("idx/i16.idx"))
        }
    }

    @Test func limitsApplyBeforeDecompressing() {
        var limits = DataLimits.default
        limits.maxDecodedBytes = 59
        expectDataError("tooLarge", mentions: ["[3x4x5]", "59"]) {
            _ = try IDXFile.read(fixture("idx/images-idx3-ubyte.gz"), limits: limits)
        }
        limits.maxDecodedBytes = 60
        #expect(throws: Never.self) { _ = try IDXFile.read(fixture("idx/images-idx3-ubyte.gz"), limits: limits) }
        limits.maxRank = 2
        expectDataError("tooLarge", mentions: ["rank 3"]) {
            _ = try IDXFile.read(fixture("idx/images-idx3-ubyte"), limits: limits)
        }
    }

    @Test func directoryLookupFindsRawOrGzipAndNamesMissingFiles() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try FileSystem.writeFileAtomically(directory.file("train-images-idx3-ubyte.gz"),
                                           bytes: FileSystem.readFile(fixture("idx/images-idx3-ubyte.gz")))
        try FileSystem.writeFileAtomically(directory.file("train-labels-idx1-ubyte"),
                                           bytes: FileSystem.readFile(fixture("idx/labels-idx1-ubyte")))
        let train = try IDXDataset.load(directory: directory.path, split: .train)
        #expect(train.count == 3 && (0..<3).map(train.label) == [7, 0, 9])

        try FileSystem.writeFileAtomically(directory.file("t10k-labels-idx1-ubyte.gz"),
                                           bytes: FileSystem.readFile(fixture("idx/labels-idx1-ubyte.gz")))
        let error = expectDataError("missingFiles", mentions: [directory.path, "t10k-images-idx3-ubyte[.gz]",
                                                               "dataset-fashion-mnist", "/usr/share/datasets/fashion-mnist"]) {
            _ = try IDXDataset.load(directory: directory.path, split: .test)
        }
        #expect(error.map { "\($0)" }?.contains("t10k-labels") == false)
    }

    @Test func missingDirectoryIsExplained() {
        expectDataError("missingFiles", mentions: ["/nonexistent/mnist", "no such directory", "train-images-idx3-ubyte[.gz]",
                                                   "train-labels-idx1-ubyte[.gz]", "dataset-fashion-mnist"]) {
            _ = try IDXDataset.load(directory: "/nonexistent/mnist", split: .train)
        }
    }

    @Test func missingFileIsAFileError() {
        expectDataError("file", mentions: ["/nonexistent/images.idx", "no such file"]) {
            _ = try IDXFile.read("/nonexistent/images.idx")
        }
    }
}

/// The real Fashion-MNIST from Debian's `dataset-fashion-mnist` package. The test command installs
/// that package, so a missing directory is a failure here, never a skip: if this test fails with
/// "missing ...", install `dataset-fashion-mnist` (it puts the four gzipped IDX files in
/// /usr/share/datasets/fashion-mnist).
@Suite struct FashionMNISTTests {
    @Test(arguments: [(IDXSplit.train, 60000), (IDXSplit.test, 10000)])
    func installedFashionMNISTLoads(split: IDXSplit, expectedCount: Int) throws {
        let dataset = try IDXDataset.load(directory: IDXDataset.fashionMNISTDirectory, split: split)
        #expect(dataset.count == expectedCount)
        #expect(dataset.rows == 28 && dataset.columns == 28)
        #expect(dataset.images.data.count == expectedCount * 28 * 28)
        var perClass = [Int](repeating: 0, count: 10)
        var outOfRange = 0
        for label in dataset.labels.data {
            if label < 10 { perClass[Int(label)] += 1 } else { outOfRange += 1 }
        }
        #expect(outOfRange == 0)
        // Fashion-MNIST is balanced: 6000 (train) or 1000 (test) images per class.
        #expect(perClass == [Int](repeating: expectedCount / 10, count: 10))
        #expect(dataset.images.data.contains { $0 > 0 } && dataset.images.data.contains(255))
    }
}
