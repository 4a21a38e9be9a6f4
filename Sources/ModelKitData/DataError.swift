import ModelKitCore

/// Why a dataset or input file could not be read or written. Every message is one line and
/// starts with the file (or, for in-memory data, the name the caller gave it).
public enum DataError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file could not be opened, read or written.
    case file(FileError)
    /// The first bytes are not this format's signature.
    case badMagic(file: String, detail: String)
    /// The data ends before the structure it declares.
    case truncated(file: String, detail: String)
    /// Two counts that must agree do not (data length vs. declared shape, images vs. labels, …).
    case countMismatch(file: String, detail: String)
    /// A declared size overflows or exceeds a `DataLimits` bound.
    case tooLarge(file: String, detail: String)
    /// Well-formed, but uses a feature this reader does not implement (dtype, colour type, …).
    case unsupported(file: String, detail: String)
    /// Structurally invalid (bad header field, chunk order, filter byte, …).
    case malformed(file: String, detail: String)
    /// A checksum (PNG chunk CRC) does not match.
    case badChecksum(file: String, detail: String)
    /// The zlib / gzip / deflate stream is corrupt (including its own CRC-32 / Adler-32 check).
    case badCompressedData(file: String, detail: String)
    /// A dataset directory lacks required files.
    case missingFiles(directory: String, names: [String], hint: String)

    public var description: String {
        switch self {
        case .file(let error): return error.description
        case .badMagic(let file, let detail): return "\(file): wrong magic: \(detail)"
        case .truncated(let file, let detail): return "\(file): truncated: \(detail)"
        case .countMismatch(let file, let detail): return "\(file): count mismatch: \(detail)"
        case .tooLarge(let file, let detail): return "\(file): declared size too large: \(detail)"
        case .unsupported(let file, let detail): return "\(file): unsupported: \(detail)"
        case .malformed(let file, let detail): return "\(file): malformed: \(detail)"
        case .badChecksum(let file, let detail): return "\(file): bad checksum: \(detail)"
        case .badCompressedData(let file, let detail): return "\(file): bad compressed data: \(detail)"
        case .missingFiles(let directory, let names, let hint):
            let list = names.joined(separator: ", ")
            return hint.isEmpty ? "\(directory): missing \(list)" : "\(directory): missing \(list) (\(hint))"
        }
    }
}

/// Bounds the readers enforce on untrusted input, checked with overflow-safe arithmetic before
/// anything is allocated. Decompressed sizes are additionally bounded by what the compressed input
/// could possibly expand to (deflate's maximum ratio is 1032:1), so a tiny file declaring a huge
/// payload is rejected as truncated without allocating.
public struct DataLimits: Hashable, Sendable {
    /// Largest input file read from disk (compressed or not), in bytes.
    public var maxFileBytes: Int
    /// Largest decoded payload: IDX element data, .npy element data, decompressed gzip/zlib output,
    /// decoded PNG pixels. Decompression stops as soon as it would pass this.
    public var maxDecodedBytes: Int
    /// Largest rank of an IDX or .npy array.
    public var maxRank: Int
    /// Largest PNG width or height.
    public var maxImageSide: Int
    /// Largest PNG width × height.
    public var maxImagePixels: Int

    public init(maxFileBytes: Int = 1 << 31, maxDecodedBytes: Int = 1 << 30, maxRank: Int = 8,
                maxImageSide: Int = 16384, maxImagePixels: Int = 1 << 28) {
        self.maxFileBytes = maxFileBytes
        self.maxDecodedBytes = maxDecodedBytes
        self.maxRank = maxRank
        self.maxImageSide = maxImageSide
        self.maxImagePixels = maxImagePixels
    }

    public static let `default` = DataLimits()
}

/// Reads a whole file, turning file-system failures into `DataError.file`.
func readInput(_ path: String, limits: DataLimits) throws -> [UInt8] {
    do {
        return try FileSystem.readFile(path, limit: limits.maxFileBytes)
    } catch let error as FileError {
        throw DataError.file(error)
    }
}

/// Writes a whole file atomically, turning file-system failures into `DataError.file`.
func writeOutput(_ path: String, bytes: [UInt8]) throws {
    do {
        try FileSystem.writeFileAtomically(path, bytes: bytes)
    } catch let error as FileError {
        throw DataError.file(error)
    }
}
