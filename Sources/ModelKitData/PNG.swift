import ModelKitCore

/// An 8-bit image, rows top to bottom, pixels interleaved (HWC).
public struct Image: Hashable, Sendable {
    public var width: Int
    public var height: Int
    /// 1 (gray) or 3 (RGB). Decoding drops alpha without compositing.
    public var channels: Int
    /// `height × width × channels` bytes.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// Sample `channel` of the pixel at column `x`, row `y`.
    public subscript(x x: Int, y y: Int, channel channel: Int) -> UInt8 {
        pixels[(y * width + x) * channels + channel]
    }
}

/// PNG decoding and a minimal encoder.
///
/// Decoding: every standard colour type (gray, gray+alpha, RGB, RGBA, palette) at every bit depth
/// the PNG spec allows for it (1/2/4/8/16 gray, 1/2/4/8 palette, 8/16 otherwise), Adam7 interlaced
/// or not, all five row filters. Sub-byte gray is scaled to 0…255, 16-bit samples are rounded to
/// 8 bits (`round(v / 257)`), alpha and `tRNS` are dropped, other ancillary chunks are ignored.
/// Every chunk's CRC is checked; IHDR must come first, PLTE before IDAT, IDAT chunks must be
/// consecutive, IEND must be present; the decompressed data must have exactly the size the header
/// implies. Dimensions are checked against `DataLimits` before anything is allocated, and the
/// image is decoded one row at a time from the zlib stream.
public enum PNG {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    public static func read(_ path: String, limits: DataLimits = .default) throws -> Image {
        try decode(try readInput(path, limits: limits), name: path, limits: limits)
    }

    struct Header {
        var width: Int
        var height: Int
        var bitDepth: Int
        var colorType: UInt8
        var interlaced: Bool

        /// Samples per pixel in the file.
        var fileChannels: Int {
            switch colorType {
            case 0, 3: return 1
            case 4: return 2
            case 2: return 3
            default: return 4
            }
        }

        var outputChannels: Int { colorType == 0 || colorType == 4 ? 1 : 3 }
    }

    static func readUInt32(_ bytes: [UInt8], _ offset: Int) -> Int {
        Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
    }

    public static func decode(_ bytes: [UInt8], name: String = "<memory>", limits: DataLimits = .default) throws -> Image {
        let prefix = min(bytes.count, 8)
        guard Array(bytes[0..<prefix]) == Array(signature[0..<prefix]) else {
            throw DataError.badMagic(file: name, detail: "not a PNG file (signature "
                + bytes[0..<prefix].map(hexByte).joined(separator: " ") + ")")
        }
        guard bytes.count >= 8 else { throw DataError.truncated(file: name, detail: "PNG signature is cut off") }

        var header: Header?
        var palette: [UInt8]?
        var idat: [UInt8] = []
        var sawIDAT = false
        var idatEnded = false
        var sawIEND = false
        var position = 8
        while position < bytes.count {
            guard bytes.count - position >= 8 else {
                throw DataError.truncated(file: name, detail: "chunk header at byte \(position) is cut off")
            }
            let length = readUInt32(bytes, position)
            let typeBytes = Array(bytes[(position + 4)..<(position + 8)])
            guard typeBytes.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) }) else {
                throw DataError.malformed(file: name, detail: "invalid chunk type "
                    + typeBytes.map(hexByte).joined(separator: " ") + " at byte \(position)")
            }
            let type = String(decoding: typeBytes, as: UTF8.self)
            guard length <= Int(Int32.max) else {
                throw DataError.malformed(file: name, detail: "chunk '\(type)' declares length \(length), more than 2^31-1")
            }
            let dataStart = position + 8
            guard bytes.count - dataStart >= length + 4 else {
                throw DataError.truncated(file: name, detail: "chunk '\(type)' declares \(length) bytes plus CRC, "
                    + "only \(bytes.count - dataStart) remain")
            }
            let dataEnd = dataStart + length
            let stored = UInt32(readUInt32(bytes, dataEnd))
            let computed = Deflate.crc32(bytes[(position + 4)..<dataEnd])
            guard stored == computed else {
                throw DataError.badChecksum(file: name, detail: "chunk '\(type)' at byte \(position) has CRC "
                    + "\(String(stored, radix: 16)), computed \(String(computed, radix: 16))")
            }
            let data = bytes[dataStart..<dataEnd]
            position = dataEnd + 4

            if header == nil && type != "IHDR" {
                throw DataError.malformed(file: name, detail: "first chunk is '\(type)', expected 'IHDR'")
            }
            if sawIDAT && type != "IDAT" { idatEnded = true }
            switch type {
            case "IHDR":
                guard header == nil else { throw DataError.malformed(file: name, detail: "second IHDR chunk") }
                header = try parseHeader(Array(data), name: name, limits: limits)
            case "PLTE":
                guard palette == nil else { throw DataError.malformed(file: name, detail: "second PLTE chunk") }
                guard !sawIDAT else { throw DataError.malformed(file: name, detail: "PLTE after IDAT") }
                guard length % 3 == 0, (3...768).contains(length) else {
                    throw DataError.malformed(file: name, detail: "PLTE length \(length) is not 3 × (1…256)")
                }
                let colorType = header!.colorType
                guard colorType != 0 && colorType != 4 else {
                    throw DataError.malformed(file: name, detail: "PLTE chunk in a grayscale image")
                }
                palette = Array(data)
            case "IDAT":
                guard !idatEnded else { throw DataError.malformed(file: name, detail: "IDAT chunks are not consecutive") }
                sawIDAT = true
                idat += data
            case "IEND":
                sawIEND = true
            default:
                // Bit 5 of the first byte clear marks a critical chunk a decoder must understand.
                if typeBytes[0] & 0x20 == 0 {
                    throw DataError.unsupported(file: name, detail: "unknown critical chunk '\(type)'")
                }
            }
            if sawIEND { break }
        }
        guard let header else { throw DataError.truncated(file: name, detail: "no IHDR chunk") }
        guard sawIEND else { throw DataError.truncated(file: name, detail: "no IEND chunk (file ends at byte \(bytes.count))") }
        guard sawIDAT else { throw DataError.malformed(file: name, detail: "no IDAT chunk") }
        if header.colorType == 3 && palette == nil {
            throw DataError.malformed(file: name, detail: "palette image without a PLTE chunk")
        }
        return try decodePixels(header: header, palette: palette ?? [], idat: idat, name: name, limits: limits)
    }

    static func parseHeader(_ data: [UInt8], name: String, limits: DataLimits) throws -> Header {
        guard data.count == 13 else {
            throw DataError.malformed(file: name, detail: "IHDR length is \(data.count), expected 13")
        }
        let width = readUInt32(data, 0), height = readUInt32(data, 4)
        let bitDepth = Int(data[8]), colorType = data[9]
        guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw DataError.malformed(file: name, detail: "image size \(width)×\(height) is invalid")
        }
        guard width <= limits.maxImageSide, height <= limits.maxImageSide else {
            throw DataError.tooLarge(file: name, detail: "image size \(width)×\(height) exceeds the limit of "
                + "\(limits.maxImageSide) per side")
        }
        guard let pixels = Shape.checkedMultiply(width, height), pixels <= limits.maxImagePixels else {
            throw DataError.tooLarge(file: name, detail: "image size \(width)×\(height) exceeds the limit of "
                + "\(limits.maxImagePixels) pixels")
        }
        let allowed: [Int]
        switch colorType {
        case 0: allowed = [1, 2, 4, 8, 16]
        case 3: allowed = [1, 2, 4, 8]
        case 2, 4, 6: allowed = [8, 16]
        default:
            throw DataError.unsupported(file: name, detail: "PNG color type \(colorType) (valid: 0, 2, 3, 4, 6)")
        }
        guard allowed.contains(bitDepth) else {
            throw DataError.unsupported(file: name, detail: "bit depth \(bitDepth) for PNG color type \(colorType)")
        }
        guard data[10] == 0 else { throw DataError.unsupported(file: name, detail: "PNG compression method \(data[10])") }
        guard data[11] == 0 else { throw DataError.unsupported(file: name, detail: "PNG filter method \(data[11])") }
        guard data[12] <= 1 else { throw DataError.unsupported(file: name, detail: "PNG interlace method \(data[12])") }
        return Header(width: width, height: height, bitDepth: bitDepth, colorType: colorType, interlaced: data[12] == 1)
    }

    /// (x start, y start, x step, y step) of each Adam7 pass.
    static let adam7: [(Int, Int, Int, Int)] = [
        (0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2),
    ]

    static func decodePixels(header: Header, palette: [UInt8], idat: [UInt8], name: String,
                             limits: DataLimits) throws -> Image {
        let passes = header.interlaced ? adam7 : [(0, 0, 1, 1)]
        let bitsPerPixel = header.fileChannels * header.bitDepth
        let bytesPerPixel = max(1, bitsPerPixel / 8)
        // Sizes fit easily: width, height ≤ 2^31-1 and were checked against the limits.
        var filteredSize = 0
        for (x0, y0, dx, dy) in passes {
            let passWidth = header.width > x0 ? (header.width - x0 + dx - 1) / dx : 0
            let passHeight = header.height > y0 ? (header.height - y0 + dy - 1) / dy : 0
            guard passWidth > 0, passHeight > 0 else { continue }
            guard let bits = Shape.checkedMultiply(passWidth, bitsPerPixel),
                  let passBytes = Shape.checkedMultiply(passHeight, 1 + (bits + 7) / 8) else {
                throw DataError.tooLarge(file: name, detail: "image data size overflows")
            }
            filteredSize += passBytes
        }
        guard let outputSize = Shape.checkedProduct([header.width, header.height, header.outputChannels]),
              outputSize <= limits.maxDecodedBytes else {
            throw DataError.tooLarge(file: name, detail: "\(header.width)×\(header.height)×\(header.outputChannels) "
                + "pixels exceed the limit of \(limits.maxDecodedBytes) bytes")
        }
        guard filteredSize <= Deflate.maxExpansion(ofCompressedCount: idat.count) else {
            throw DataError.truncated(file: name, detail: "\(header.width)×\(header.height) image needs \(filteredSize) "
                + "bytes of image data, \(idat.count) compressed bytes cannot hold them")
        }
        let outChannels = header.outputChannels
        var pixels = [UInt8](repeating: 0, count: outputSize)
        let inflater = try Inflater(idat, format: .zlib, name: name)
        let depth = header.bitDepth
        let mask = depth >= 8 ? 0 : (1 << depth) - 1
        let scale = depth >= 8 ? 1 : 255 / mask  // 1 → 255, 2 → 85, 4 → 17
        var row: [UInt8] = []
        var previous: [UInt8] = []
        for (passIndex, (x0, y0, dx, dy)) in passes.enumerated() {
            let passWidth = header.width > x0 ? (header.width - x0 + dx - 1) / dx : 0
            let passHeight = header.height > y0 ? (header.height - y0 + dy - 1) / dy : 0
            guard passWidth > 0, passHeight > 0 else { continue }
            let rowBytes = (passWidth * bitsPerPixel + 7) / 8
            previous = [UInt8](repeating: 0, count: rowBytes)
            for passRow in 0..<passHeight {
                row.removeAll(keepingCapacity: true)
                let got = try inflater.read(rowBytes + 1, into: &row)
                guard got == rowBytes + 1 else {
                    let where_ = header.interlaced ? "row \(passRow) of Adam7 pass \(passIndex + 1)" : "row \(passRow)"
                    throw DataError.truncated(file: name, detail: "image data ends in \(where_)")
                }
                let filter = row[0]
                try unfilter(&row, previous: previous, filter: filter, bytesPerPixel: bytesPerPixel, name: name, row: passRow)
                let y = y0 + passRow * dy
                try row.withUnsafeBufferPointer { line in
                    let samples = UnsafeBufferPointer(rebasing: line[1...])
                    func sample(_ index: Int) -> Int {
                        switch depth {
                        case 8: return Int(samples[index])
                        case 16:
                            let value = Int(samples[2 * index]) << 8 | Int(samples[2 * index + 1])
                            return (value * 2 + 257) / 514  // round(value / 257)
                        default:
                            let bit = index * depth
                            let shift = 8 - depth - bit % 8
                            return Int(samples[bit / 8] >> UInt8(shift)) & mask
                        }
                    }
                    for column in 0..<passWidth {
                        let out = ((y * header.width) + x0 + column * dx) * outChannels
                        switch header.colorType {
                        case 0:
                            pixels[out] = UInt8(sample(column) * scale)
                        case 4:
                            pixels[out] = UInt8(sample(column * 2))
                        case 2, 6:
                            let base = column * header.fileChannels
                            pixels[out] = UInt8(sample(base))
                            pixels[out + 1] = UInt8(sample(base + 1))
                            pixels[out + 2] = UInt8(sample(base + 2))
                        default:
                            let index = sample(column)
                            guard index * 3 < palette.count else {
                                throw DataError.malformed(file: name,
                                    detail: "palette index \(index) beyond the \(palette.count / 3)-entry PLTE")
                            }
                            pixels[out] = palette[index * 3]
                            pixels[out + 1] = palette[index * 3 + 1]
                            pixels[out + 2] = palette[index * 3 + 2]
                        }
                    }
                }
                swap(&row, &previous)
                previous.removeFirst()  // Drop the filter byte so `previous` holds only samples.
            }
        }
        try inflater.expectEnd(what: "image data for \(header.width)×\(header.height) pixels")
        return Image(width: header.width, height: header.height, channels: outChannels, pixels: pixels)
    }

    /// Reverses one row's filter in place; `row[0]` is the filter byte, `previous` the prior
    /// row's unfiltered samples (zeros for a pass's first row).
    static func unfilter(_ row: inout [UInt8], previous: [UInt8], filter: UInt8, bytesPerPixel bpp: Int,
                         name: String, row rowIndex: Int) throws {
        guard filter <= 4 else {
            throw DataError.malformed(file: name, detail: "row \(rowIndex) has filter type \(filter) (valid: 0…4)")
        }
        let count = row.count - 1
        row.withUnsafeMutableBufferPointer { whole in
            let line = UnsafeMutableBufferPointer(rebasing: whole[1...])
            previous.withUnsafeBufferPointer { above in
                switch filter {
                case 1:  // Sub
                    for i in bpp..<max(count, bpp) { line[i] &+= line[i - bpp] }
                case 2:  // Up
                    for i in 0..<count { line[i] &+= above[i] }
                case 3:  // Average
                    for i in 0..<count {
                        let left = i >= bpp ? Int(line[i - bpp]) : 0
                        line[i] &+= UInt8((left + Int(above[i])) / 2)
                    }
                case 4:  // Paeth
                    for i in 0..<count {
                        let a = i >= bpp ? Int(line[i - bpp]) : 0
                        let b = Int(above[i])
                        let c = i >= bpp ? Int(above[i - bpp]) : 0
                        let p = a + b - c
                        let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                        let predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
                        line[i] &+= UInt8(predictor)
                    }
                default:
                    break
                }
            }
        }
    }

    /// Encodes an 8-bit gray (1 channel) or RGB (3 channels) image as a non-interlaced PNG with
    /// filter type 0 on every row. `compressionLevel` 0 stores the data uncompressed (stored deflate
    /// blocks); 1…9 compress.
    public static func encode(_ image: Image, compressionLevel: Int = 6) throws -> [UInt8] {
        guard image.channels == 1 || image.channels == 3 else {
            throw DataError.unsupported(file: "<image>", detail: "PNG writer takes 1 or 3 channels, not \(image.channels)")
        }
        guard (1...Int(Int32.max)).contains(image.width), (1...Int(Int32.max)).contains(image.height) else {
            throw DataError.unsupported(file: "<image>", detail: "image size \(image.width)×\(image.height)")
        }
        guard let expected = Shape.checkedProduct([image.width, image.height, image.channels]),
              expected == image.pixels.count else {
            throw DataError.countMismatch(file: "<image>", detail: "\(image.width)×\(image.height)×\(image.channels) "
                + "image with \(image.pixels.count) pixel bytes")
        }
        let rowBytes = image.width * image.channels
        var raw: [UInt8] = []
        raw.reserveCapacity(image.height * (rowBytes + 1))
        for y in 0..<image.height {
            raw.append(0)
            raw += image.pixels[(y * rowBytes)..<((y + 1) * rowBytes)]
        }
        let compressed = try Deflate.deflate(raw, format: .zlib, level: compressionLevel)
        var bytes = signature
        func be32(_ value: Int) -> [UInt8] {
            [UInt8(value >> 24 & 0xff), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
        }
        func chunk(_ type: String, _ data: ArraySlice<UInt8>) {
            let typeBytes = Array(type.utf8)
            bytes += be32(data.count)
            bytes += typeBytes
            bytes += data
            bytes += be32(Int(Deflate.crc32(data, continuing: Deflate.crc32(typeBytes))))
        }
        let colorType: UInt8 = image.channels == 1 ? 0 : 2
        chunk("IHDR", ArraySlice(be32(image.width) + be32(image.height) + [8, colorType, 0, 0, 0]))
        var offset = 0
        repeat {
            let take = min(compressed.count - offset, 1 << 20)
            chunk("IDAT", compressed[offset..<(offset + take)])
            offset += take
        } while offset < compressed.count
        chunk("IEND", [])
        return bytes
    }

    /// Writes `image` as a PNG file, atomically.
    public static func write(_ image: Image, to path: String, compressionLevel: Int = 6) throws {
        try writeOutput(path, bytes: try encode(image, compressionLevel: compressionLevel))
    }
}
