import ModelKitCore

/// The .npy element types this reader understands (all little-endian).
public enum NpyDType: String, Hashable, Sendable, CaseIterable {
    case float32 = "<f4"
    case float64 = "<f8"
    case int32 = "<i4"
    case uint8 = "|u1"
    case int8 = "|i1"

    public var byteSize: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int32, .float32: return 4
        case .float64: return 8
        }
    }

    /// Parses a numpy `descr` string. One-byte types accept any byte-order mark; multi-byte
    /// types accept `<` and `=` (native, little-endian on every platform modelkit targets).
    init(descr: String, file: String) throws {
        let scalars = Array(descr.unicodeScalars)
        guard scalars.count >= 3, "<>|=".unicodeScalars.contains(scalars[0]) else {
            throw DataError.unsupported(file: file, detail: "dtype '\(descr)' (expected e.g. '<f4', '|u1')")
        }
        let kind = String(String.UnicodeScalarView(scalars[1...]))
        let order = scalars[0]
        switch kind {
        case "u1": self = .uint8
        case "i1": self = .int8
        case "f4", "f8", "i4":
            guard order == "<" || order == "=" else {
                throw DataError.unsupported(file: file, detail: "dtype '\(descr)': only little-endian data is supported")
            }
            self = kind == "f4" ? .float32 : kind == "f8" ? .float64 : .int32
        default:
            throw DataError.unsupported(file: file,
                detail: "dtype '\(descr)' (supported: '<f4', '<f8', '<i4', '|u1', '|i1')")
        }
    }
}

/// A numpy array read from or written to a `.npy` file, with its values converted to Float
/// (exact for u1, i1 and f4; rounded for f8 and for i4 beyond ±2^24).
public struct NpyArray: Hashable, Sendable {
    public var shape: Shape
    public var values: [Float]
    /// The element type of the file this array came from. Writing always produces `<f4`.
    public var dtype: NpyDType

    public init(shape: Shape, values: [Float], dtype: NpyDType = .float32) {
        self.shape = shape
        self.values = values
        self.dtype = dtype
    }

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// Reads a `.npy` file (format 1.0, 2.0 or 3.0, C order).
    public static func read(_ path: String, limits: DataLimits = .default) throws -> NpyArray {
        try decode(try readInput(path, limits: limits), name: path, limits: limits)
    }

    public static func decode(_ bytes: [UInt8], name: String = "<memory>", limits: DataLimits = .default) throws -> NpyArray {
        guard bytes.count >= 8 else {
            if bytes.count < 6 || Array(bytes[0..<6]) != magic {
                throw DataError.badMagic(file: name, detail: "not a .npy file (expected \\x93NUMPY)")
            }
            throw DataError.truncated(file: name, detail: ".npy preamble is \(bytes.count) bytes, expected at least 10")
        }
        guard Array(bytes[0..<6]) == magic else {
            throw DataError.badMagic(file: name, detail: "not a .npy file (expected \\x93NUMPY, found "
                + bytes[0..<6].map(hexByte).joined(separator: " ") + ")")
        }
        let major = bytes[6], minor = bytes[7]
        guard (1...3).contains(major), minor == 0 else {
            throw DataError.unsupported(file: name, detail: ".npy format version \(major).\(minor) (supported: 1.0, 2.0, 3.0)")
        }
        let lengthBytes = major == 1 ? 2 : 4
        guard bytes.count >= 8 + lengthBytes else {
            throw DataError.truncated(file: name, detail: ".npy header length field is cut off")
        }
        var headerLength = 0
        for index in (0..<lengthBytes).reversed() { headerLength = headerLength << 8 | Int(bytes[8 + index]) }
        let headerStart = 8 + lengthBytes
        guard headerLength <= bytes.count - headerStart else {
            throw DataError.truncated(file: name,
                detail: ".npy header declares \(headerLength) bytes, only \(bytes.count - headerStart) present")
        }
        var parser = NpyHeaderParser(bytes: bytes[headerStart..<(headerStart + headerLength)], file: name)
        let header = try parser.parse()
        if header.fortranOrder {
            throw DataError.unsupported(file: name, detail: "'fortran_order': True (only C-order arrays are supported)")
        }
        let dtype = try NpyDType(descr: header.descr, file: name)
        let shape = Shape(header.shape)
        guard shape.rank <= limits.maxRank else {
            throw DataError.tooLarge(file: name, detail: ".npy rank \(shape.rank) exceeds the limit of \(limits.maxRank)")
        }
        guard let count = shape.elementCount, let byteCount = Shape.checkedMultiply(count, dtype.byteSize) else {
            throw DataError.tooLarge(file: name, detail: ".npy shape \(shape) overflows")
        }
        guard byteCount <= limits.maxDecodedBytes else {
            throw DataError.tooLarge(file: name, detail: ".npy shape \(shape) of '\(dtype.rawValue)' needs \(byteCount) bytes, "
                + "more than the limit of \(limits.maxDecodedBytes)")
        }
        let dataStart = headerStart + headerLength
        let available = bytes.count - dataStart
        if available < byteCount {
            throw DataError.truncated(file: name,
                detail: ".npy shape \(shape) of '\(dtype.rawValue)' needs \(byteCount) data bytes, found \(available)")
        }
        if available > byteCount {
            throw DataError.countMismatch(file: name,
                detail: ".npy shape \(shape) of '\(dtype.rawValue)' needs \(byteCount) data bytes, found \(available)")
        }
        var values = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            let data = UnsafeRawBufferPointer(rebasing: raw[dataStart...])
            switch dtype {
            case .uint8: for i in 0..<count { values[i] = Float(data[i]) }
            case .int8: for i in 0..<count { values[i] = Float(Int8(bitPattern: data[i])) }
            case .int32:
                for i in 0..<count {
                    values[i] = Float(Int32(littleEndian: data.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)))
                }
            case .float32:
                for i in 0..<count {
                    values[i] = Float(bitPattern: UInt32(littleEndian: data.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                }
            case .float64:
                for i in 0..<count {
                    values[i] = Float(Double(bitPattern: UInt64(littleEndian: data.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))))
                }
            }
        }
        return NpyArray(shape: shape, values: values, dtype: dtype)
    }

    /// The `.npy` bytes: format 1.0 (2.0 if the header would not fit), in the array's `dtype`,
    /// C order, header padded with spaces to a multiple of 64 bytes as numpy does. Values that
    /// an integer dtype cannot hold exactly are an error, not silently rounded.
    public func encoded() throws -> [UInt8] {
        guard shape.dims.allSatisfy({ $0 >= 0 }), let count = shape.elementCount else {
            throw DataError.unsupported(file: "<npy>", detail: "shape \(shape) cannot be stored")
        }
        guard count == values.count else {
            throw DataError.countMismatch(file: "<npy>", detail: "shape \(shape) has \(count) elements, but \(values.count) values were given")
        }
        let shapeText: String
        switch shape.rank {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(shape[0]),)"
        default: shapeText = "(" + shape.dims.map(String.init).joined(separator: ", ") + ")"
        }
        let dict = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }"
        var major: UInt8 = 1
        var prefix = 10
        var total = prefix + dict.utf8.count + 1
        if (total + 63) / 64 * 64 - prefix > Int(UInt16.max) {
            major = 2
            prefix = 12
            total = prefix + dict.utf8.count + 1
        }
        let padded = (total + 63) / 64 * 64
        let headerLength = padded - prefix
        var bytes = NpyArray.magic + [major, 0]
        if major == 1 {
            bytes += [UInt8(headerLength & 0xff), UInt8(headerLength >> 8)]
        } else {
            bytes += [UInt8(headerLength & 0xff), UInt8(headerLength >> 8 & 0xff),
                      UInt8(headerLength >> 16 & 0xff), UInt8(headerLength >> 24 & 0xff)]
        }
        bytes += Array(dict.utf8)
        bytes += [UInt8](repeating: 0x20, count: headerLength - dict.utf8.count - 1)
        bytes.append(0x0A)
        bytes.reserveCapacity(bytes.count + count * dtype.byteSize)
        func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        func exact<T: FixedWidthInteger>(_ value: Float, as type: T.Type) throws -> T {
            guard let converted = T(exactly: value) else {
                throw DataError.unsupported(file: "<npy>", detail: "value \(value) does not fit dtype \(dtype.rawValue)")
            }
            return converted
        }
        for value in values {
            switch dtype {
            case .float32: appendLittleEndian(value.bitPattern)
            case .float64: appendLittleEndian(Double(value).bitPattern)
            case .int32: appendLittleEndian(try exact(value, as: Int32.self))
            case .uint8: bytes.append(try exact(value, as: UInt8.self))
            case .int8: appendLittleEndian(try exact(value, as: Int8.self))
            }
        }
        return bytes
    }

    /// Writes the array as a `.npy` file in its `dtype`, atomically.
    public func write(to path: String) throws {
        try writeOutput(path, bytes: try encoded())
    }
}

/// The parsed header dictionary.
struct NpyHeader {
    var descr: String
    var fortranOrder: Bool
    var shape: [Int]
}

/// A strict parser for the Python-literal header dict: exactly the keys `descr`, `fortran_order`
/// and `shape`, each once, in any order; quoted strings without escapes; `True`/`False`; a tuple of
/// non-negative integers (`()`, `(3,)`, `(3, 4)`, trailing comma allowed, `(3)` is not a tuple).
/// Any amount of spaces, tabs and newlines between tokens.
struct NpyHeaderParser {
    let bytes: ArraySlice<UInt8>
    let file: String
    var position: Int

    init(bytes: ArraySlice<UInt8>, file: String) {
        self.bytes = bytes
        self.file = file
        self.position = bytes.startIndex
    }

    func fail(_ detail: String) -> DataError {
        .malformed(file: file, detail: ".npy header: \(detail) at byte \(position - bytes.startIndex)")
    }

    var current: UInt8? { position < bytes.endIndex ? bytes[position] : nil }

    mutating func skipSpace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { position += 1 }
    }

    mutating func expect(_ character: Character) throws {
        skipSpace()
        guard let byte = current, byte == character.asciiValue! else {
            throw fail("expected '\(character)'")
        }
        position += 1
    }

    mutating func parseString() throws -> String {
        skipSpace()
        guard let quote = current, quote == 0x27 || quote == 0x22 else { throw fail("expected a quoted string") }
        position += 1
        var text: [UInt8] = []
        while true {
            guard let byte = current else { throw fail("unterminated string") }
            position += 1
            if byte == quote { break }
            guard byte >= 0x20, byte < 0x7F, byte != 0x5C else { throw fail("unsupported character in string") }
            text.append(byte)
        }
        return String(decoding: text, as: UTF8.self)
    }

    mutating func parseWord() -> String {
        var text: [UInt8] = []
        while let byte = current, (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) {
            text.append(byte)
            position += 1
        }
        return String(decoding: text, as: UTF8.self)
    }

    mutating func parseBool() throws -> Bool {
        skipSpace()
        switch parseWord() {
        case "True": return true
        case "False": return false
        default: throw fail("expected True or False")
        }
    }

    mutating func parseInt() throws -> Int {
        skipSpace()
        var value = 0
        var digits = 0
        while let byte = current, byte >= 0x30 && byte <= 0x39 {
            guard let next = Shape.checkedMultiply(value, 10), case (let sum, false) = next.addingReportingOverflow(Int(byte - 0x30)) else {
                throw DataError.tooLarge(file: file, detail: ".npy header: dimension does not fit in 64 bits")
            }
            value = sum
            digits += 1
            position += 1
        }
        guard digits > 0 else { throw fail("expected a non-negative integer") }
        if current == 0x4C { position += 1 }  // Python 2 wrote long integers as `3L`.
        return value
    }

    mutating func parseTuple() throws -> [Int] {
        try expect("(")
        var values: [Int] = []
        var sawComma = false
        while true {
            skipSpace()
            if current == 0x29 {  // ")"
                position += 1
                break
            }
            values.append(try parseInt())
            skipSpace()
            if current == 0x2C {  // ","
                position += 1
                sawComma = true
            } else if current == 0x29 {
                position += 1
                if values.count == 1 && !sawComma { throw fail("'(n)' is not a tuple; write '(n,)'") }
                break
            } else {
                throw fail("expected ',' or ')' in shape")
            }
        }
        return values
    }

    mutating func parse() throws -> NpyHeader {
        var descr: String?
        var fortranOrder: Bool?
        var shape: [Int]?
        try expect("{")
        while true {
            skipSpace()
            if current == 0x7D {  // "}"
                position += 1
                break
            }
            let key = try parseString()
            try expect(":")
            switch key {
            case "descr":
                guard descr == nil else { throw fail("duplicate key 'descr'") }
                descr = try parseString()
            case "fortran_order":
                guard fortranOrder == nil else { throw fail("duplicate key 'fortran_order'") }
                fortranOrder = try parseBool()
            case "shape":
                guard shape == nil else { throw fail("duplicate key 'shape'") }
                shape = try parseTuple()
            default:
                throw fail("unexpected key '\(key)'")
            }
            skipSpace()
            if current == 0x2C {
                position += 1
            } else if current == 0x7D {
                position += 1
                break
            } else {
                throw fail("expected ',' or '}'")
            }
        }
        skipSpace()
        guard position == bytes.endIndex else { throw fail("unexpected text after the dict") }
        guard let descr, let fortranOrder, let shape else {
            var missing: [String] = []
            if descr == nil { missing.append("'descr'") }
            if fortranOrder == nil { missing.append("'fortran_order'") }
            if shape == nil { missing.append("'shape'") }
            throw DataError.malformed(file: file, detail: ".npy header lacks " + missing.joined(separator: ", "))
        }
        return NpyHeader(descr: descr, fortranOrder: fortranOrder, shape: shape)
    }
}
