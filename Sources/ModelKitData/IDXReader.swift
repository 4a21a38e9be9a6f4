import ModelKitCore

/// An IDX file (raw or gzipped) whose header has been parsed and checked but whose elements have
/// not been read, so a caller that wants a few records (images) decompresses only up to them.
public final class IDXReader {
    public let dataType: IDXDataType
    public let shape: Shape
    public let name: String
    private let source: ByteSource
    private let recordBytes: Int
    /// Records already consumed from the stream (read or skipped).
    private var position = 0

    /// Opens `path` and parses the IDX header (see `init(_:name:limits:)`); the file is then read
    /// in chunks as records are asked for, so one early record of a large file costs little.
    public convenience init(path: String, limits: DataLimits = .default) throws {
        let file = try FileChunks(path: path, limits: limits)
        let first = try file.next()
        let source: ByteSource = Deflate.isGzip(first)
            ? try Inflater(first: first, refill: { try file.next() }, format: .gzip, name: path)
            : FileSource(file, first: first)
        try self.init(source: source, gzip: Deflate.isGzip(first), fileSize: file.size, name: path, limits: limits)
    }

    /// Parses the header of raw or gzipped IDX `bytes` and checks the declared size (overflow,
    /// `limits.maxDecodedBytes`, what the input can hold) before anything is decompressed.
    public convenience init(_ bytes: [UInt8], name: String = "<memory>", limits: DataLimits = .default) throws {
        let gzip = Deflate.isGzip(bytes)
        let source: ByteSource = gzip ? try Inflater(bytes, format: .gzip, name: name) : ArraySource(bytes, name: name)
        try self.init(source: source, gzip: gzip, fileSize: bytes.count, name: name, limits: limits)
    }

    private init(source: ByteSource, gzip: Bool, fileSize: Int, name: String, limits: DataLimits) throws {
        let capacity = gzip ? Deflate.maxExpansion(ofCompressedCount: fileSize) : fileSize
        let magic = try source.readExactly(4, what: "IDX header")
        guard magic[0] == 0, magic[1] == 0 else {
            throw DataError.badMagic(file: name, detail: "expected 00 00 <type> <rank>, found "
                + magic.map(hexByte).joined(separator: " "))
        }
        guard let dataType = IDXDataType(rawValue: magic[2]) else {
            throw DataError.unsupported(file: name, detail: "IDX element type code 0x\(hexByte(magic[2])) "
                + "(known: 08 u8, 09 i8, 0b i16, 0c i32, 0d f32, 0e f64)")
        }
        let rank = Int(magic[3])
        guard rank >= 1 else { throw DataError.malformed(file: name, detail: "IDX rank is 0") }
        guard rank <= limits.maxRank else {
            throw DataError.tooLarge(file: name, detail: "IDX rank \(rank) exceeds the limit of \(limits.maxRank)")
        }
        let dimBytes = try source.readExactly(4 * rank, what: "IDX dimensions")
        var dims: [Int] = []
        for axis in 0..<rank {
            var value = 0
            for byte in 0..<4 { value = value << 8 | Int(dimBytes[axis * 4 + byte]) }
            dims.append(value)
        }
        let shape = Shape(dims)
        guard let elements = shape.elementCount,
              let byteCount = Shape.checkedMultiply(elements, dataType.byteSize) else {
            throw DataError.tooLarge(file: name, detail: "IDX dimensions \(shape) overflow")
        }
        guard byteCount <= limits.maxDecodedBytes else {
            throw DataError.tooLarge(file: name, detail: "IDX dimensions \(shape) of \(dataType) need \(byteCount) bytes, "
                + "more than the limit of \(limits.maxDecodedBytes)")
        }
        let headerSize = 4 + 4 * rank
        guard byteCount <= capacity - headerSize else {
            throw DataError.truncated(file: name, detail: "IDX dimensions \(shape) of \(dataType) need \(byteCount) bytes, "
                + "but a \(fileSize)-byte file holds at most \(max(capacity - headerSize, 0))")
        }
        self.dataType = dataType
        self.shape = shape
        self.name = name
        self.source = source
        // byteCount did not overflow, so neither does one record's share of it.
        self.recordBytes = dims[0] == 0 ? 0 : byteCount / dims[0]
    }

    /// The number of records: the leading dimension (images or labels in the file).
    public var count: Int { shape[0] }

    /// The element bytes of `records` (a range of the leading dimension, as stored: multi-byte
    /// types big-endian). Records before it are decompressed and dropped; nothing after it is
    /// decompressed. Reads go forward only: `records` may not start before what was read already.
    public func readRecords(_ records: Range<Int>) throws -> [UInt8] {
        guard records.lowerBound >= position, records.upperBound <= count else {
            throw DataError.malformed(file: name, detail: "IDX records \(records.lowerBound)..<\(records.upperBound) "
                + "are not ahead in \(count) records (at \(position))")
        }
        try source.skip((records.lowerBound - position) * recordBytes, what: "IDX data before record \(records.lowerBound)")
        let what = records == 0..<count ? "IDX data for \(shape) of \(dataType)"
            : "IDX records \(records.lowerBound)..<\(records.upperBound) of \(shape) \(dataType)"
        let data = try source.readExactly(records.count * recordBytes, what: what)
        position = records.upperBound
        return data
    }

    /// Throws unless every record has been read and nothing follows; for a gzipped file this
    /// runs the decompressor to its end, so the trailer checksum is verified.
    public func expectEnd() throws {
        try source.skip((count - position) * recordBytes, what: "IDX data for \(shape) of \(dataType)")
        position = count
        try source.expectEnd(what: "declared IDX data for \(shape) of \(dataType)")
    }
}
