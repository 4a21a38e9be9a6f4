import ModelKitCore

/// Element type of an IDX file (the third magic byte).
public enum IDXDataType: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0x08
    case int8 = 0x09
    case int16 = 0x0B
    case int32 = 0x0C
    case float32 = 0x0D
    case float64 = 0x0E

    public var byteSize: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int16: return 2
        case .int32, .float32: return 4
        case .float64: return 8
        }
    }

    public var description: String {
        switch self {
        case .uint8: return "u8"
        case .int8: return "i8"
        case .int16: return "i16"
        case .int32: return "i32"
        case .float32: return "f32"
        case .float64: return "f64"
        }
    }
}

/// Two lowercase hex digits.
func hexByte(_ byte: UInt8) -> String {
    let text = String(byte, radix: 16)
    return byte < 16 ? "0" + text : text
}

/// One IDX file (the MNIST container): magic `00 00 <type> <rank>`, `rank` big-endian u32
/// dimensions, then the elements row-major and big-endian. Raw or gzip-compressed (detected by
/// the gzip magic, not the file name).
public struct IDXFile: Hashable, Sendable {
    public var dataType: IDXDataType
    public var shape: Shape
    /// The element bytes as stored: row-major, multi-byte types big-endian. For `.uint8` these
    /// are the values themselves.
    public var data: [UInt8]

    public init(dataType: IDXDataType, shape: Shape, data: [UInt8]) {
        self.dataType = dataType
        self.shape = shape
        self.data = data
    }

    /// The leading dimension (images or labels in the file).
    public var count: Int { shape.rank > 0 ? shape[0] : 0 }

    /// Every element converted to Float (exact for u8, i8, i16; rounded for large i32 and for f64).
    public func floatValues() -> [Float] {
        let size = dataType.byteSize
        let count = data.count / size
        var values = [Float](repeating: 0, count: count)
        data.withUnsafeBytes { raw in
            for index in 0..<count {
                var bits: UInt64 = 0
                for byte in 0..<size { bits = bits << 8 | UInt64(raw[index * size + byte]) }
                switch dataType {
                case .uint8: values[index] = Float(UInt8(bits))
                case .int8: values[index] = Float(Int8(bitPattern: UInt8(bits)))
                case .int16: values[index] = Float(Int16(bitPattern: UInt16(bits)))
                case .int32: values[index] = Float(Int32(bitPattern: UInt32(bits)))
                case .float32: values[index] = Float(bitPattern: UInt32(bits))
                case .float64: values[index] = Float(Double(bitPattern: bits))
                }
            }
        }
        return values
    }

    /// Reads an IDX file, raw or gzipped.
    public static func read(_ path: String, limits: DataLimits = .default) throws -> IDXFile {
        try decode(try readInput(path, limits: limits), name: path, limits: limits)
    }

    /// Decodes IDX bytes, raw or gzipped. The header is parsed and the declared size checked
    /// (overflow, `limits.maxDecodedBytes`, what the input can hold) before the payload is
    /// decompressed; decompression stops at the declared size and the data length must match it
    /// exactly.
    public static func decode(_ bytes: [UInt8], name: String = "<memory>", limits: DataLimits = .default) throws -> IDXFile {
        let reader = try IDXReader(bytes, name: name, limits: limits)
        let data = try reader.readRecords(0..<reader.count)
        try reader.expectEnd()
        return IDXFile(dataType: reader.dataType, shape: reader.shape, data: data)
    }

    /// The file's bytes (uncompressed). Throws when the shape does not fit IDX (rank 1...255, each
    /// dimension < 2^32) or disagrees with `data.count`.
    public func encoded() throws -> [UInt8] {
        guard (1...255).contains(shape.rank), shape.dims.allSatisfy({ (0...Int(UInt32.max)).contains($0) }) else {
            throw DataError.unsupported(file: "<idx>", detail: "shape \(shape) cannot be stored in IDX")
        }
        guard let elements = shape.elementCount, let byteCount = Shape.checkedMultiply(elements, dataType.byteSize),
              byteCount == data.count else {
            throw DataError.countMismatch(file: "<idx>", detail: "shape \(shape) of \(dataType) does not match \(data.count) data bytes")
        }
        var bytes: [UInt8] = [0, 0, dataType.rawValue, UInt8(shape.rank)]
        for dim in shape.dims {
            let value = UInt32(dim)
            bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
        }
        bytes += data
        return bytes
    }

    /// Writes the file atomically, gzip-compressed when `gzip` is true.
    public func write(to path: String, gzip: Bool = false) throws {
        var bytes = try encoded()
        if gzip { bytes = try Deflate.deflate(bytes, format: .gzip, level: 6) }
        try writeOutput(path, bytes: bytes)
    }
}

/// The two halves of an MNIST-style dataset.
public enum IDXSplit: String, Hashable, Sendable, CaseIterable {
    case train
    case test

    /// Standard file names without the optional `.gz` suffix.
    public var imagesFileName: String { self == .train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte" }
    public var labelsFileName: String { self == .train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte" }
}

/// u8 images `[count, rows, columns]` paired with u8 labels `[count]` (MNIST, Fashion-MNIST).
public struct IDXDataset: Hashable, Sendable {
    public let images: IDXFile
    public let labels: IDXFile

    /// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST (gzipped).
    public static let fashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"

    public var count: Int { images.shape[0] }
    public var rows: Int { images.shape[1] }
    public var columns: Int { images.shape[2] }

    /// Pixels of image `index`, row-major.
    public func image(_ index: Int) -> ArraySlice<UInt8> {
        let size = rows * columns
        return images.data[(index * size)..<((index + 1) * size)]
    }

    public func label(_ index: Int) -> Int { Int(labels.data[index]) }

    /// Pairs already decoded files; `imagesName` and `labelsName` name them in errors.
    public init(images: IDXFile, labels: IDXFile, imagesName: String = "<images>", labelsName: String = "<labels>") throws {
        guard images.dataType == .uint8, images.shape.rank == 3 else {
            throw DataError.unsupported(file: imagesName,
                detail: "images must be u8 of rank 3 [count, rows, columns], found \(images.dataType) \(images.shape)")
        }
        guard labels.dataType == .uint8, labels.shape.rank == 1 else {
            throw DataError.unsupported(file: labelsName,
                detail: "labels must be u8 of rank 1 [count], found \(labels.dataType) \(labels.shape)")
        }
        guard images.shape[0] == labels.shape[0] else {
            throw DataError.countMismatch(file: labelsName,
                detail: "\(labels.shape[0]) labels, but \(imagesName) has \(images.shape[0]) images")
        }
        self.images = images
        self.labels = labels
    }

    /// Loads an images file and a labels file (each raw or gzipped).
    public static func load(images: String, labels: String, limits: DataLimits = .default) throws -> IDXDataset {
        try IDXDataset(images: try IDXFile.read(images, limits: limits), labels: try IDXFile.read(labels, limits: limits),
                       imagesName: images, labelsName: labels)
    }

    /// Loads one split from a directory holding the standard MNIST file names, each either raw or
    /// with a `.gz` suffix (the raw one wins when both exist).
    public static func load(directory: String, split: IDXSplit, limits: DataLimits = .default) throws -> IDXDataset {
        let paths = try locate(directory: directory, names: [split.imagesFileName, split.labelsFileName])
        return try load(images: paths[0], labels: paths[1], limits: limits)
    }

    /// Paths of `names` (raw or `.gz`) in `directory`, or `DataError.missingFiles` naming all that
    /// are absent.
    static func locate(directory: String, names: [String]) throws -> [String] {
        var found: [String] = []
        var missing: [String] = []
        for name in names {
            let base = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            if FileSystem.fileExists(base) && !FileSystem.isDirectory(base) {
                found.append(base)
            } else if FileSystem.fileExists(base + ".gz") && !FileSystem.isDirectory(base + ".gz") {
                found.append(base + ".gz")
            } else {
                missing.append(name + "[.gz]")
            }
        }
        guard missing.isEmpty else {
            let hint = (FileSystem.isDirectory(directory) ? "" : "no such directory; ")
                + "Debian's dataset-fashion-mnist package installs Fashion-MNIST at \(fashionMNISTDirectory)"
            throw DataError.missingFiles(directory: directory, names: missing, hint: hint)
        }
        return found
    }
}
