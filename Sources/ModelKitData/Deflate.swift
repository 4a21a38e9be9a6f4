import CZlib
import ModelKitCore

/// A zlib-family container.
public enum CompressionFormat: Sendable, Hashable {
    /// RFC 1950: two-byte header, deflate data, Adler-32 trailer (PNG's IDAT stream).
    case zlib
    /// RFC 1952: `1f 8b` header, deflate data, CRC-32 and length trailer (`.gz` files).
    case gzip
    /// RFC 1951 deflate data with no header or trailer.
    case rawDeflate
}

/// gzip / zlib / raw-deflate compression over the system zlib, with bounded output.
public enum Deflate {
    /// Deflate cannot expand data by more than 1032:1 (two bits for a 258-byte match), so this many
    /// bytes is an upper bound on what `compressedCount` compressed bytes can legitimately decode to.
    /// Readers use it to reject tiny files that declare a huge payload before allocating anything.
    public static func maxExpansion(ofCompressedCount compressedCount: Int) -> Int {
        guard let product = Shape.checkedMultiply(max(compressedCount, 0), 1032) else { return Int.max }
        let (sum, overflow) = product.addingReportingOverflow(1024)
        return overflow ? Int.max : sum
    }

    /// True when `bytes` starts with the gzip magic `1f 8b`.
    public static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
    }

    /// Decompresses a whole stream. `format: nil` auto-detects gzip or zlib (concatenated gzip
    /// members are joined, as `gunzip` does). Stops with `DataError.tooLarge` as soon as the output
    /// would exceed `limit` bytes; a stream that ends early is `DataError.truncated`; corrupt data or
    /// a failed CRC-32 / Adler-32 is `DataError.badCompressedData`.
    public static func inflate(_ bytes: [UInt8], format: CompressionFormat? = nil, limit: Int,
                               name: String = "<memory>") throws -> [UInt8] {
        let inflater = try Inflater(bytes, format: format, name: name)
        var output: [UInt8] = []
        let chunk = 1 << 20
        while !inflater.isFinished {
            // Ask for at most one byte more than allowed, so reaching the limit exactly is fine.
            let room = limit - output.count
            let request = min(chunk, room + 1)
            _ = try inflater.read(request, into: &output)
            if output.count > limit {
                throw DataError.tooLarge(file: name, detail: "decompressed data exceeds the limit of \(limit) bytes")
            }
        }
        return output
    }

    /// Reads a file and, when it starts with the gzip magic, decompresses it (at most
    /// `limits.maxDecodedBytes`); otherwise returns its bytes unchanged.
    public static func readPossiblyCompressed(_ path: String, limits: DataLimits = .default) throws -> [UInt8] {
        let bytes = try readInput(path, limits: limits)
        guard isGzip(bytes) else { return bytes }
        return try inflate(bytes, format: .gzip, limit: limits.maxDecodedBytes, name: path)
    }

    /// Compresses `bytes`. `level` is zlib's 0 (stored blocks, no compression) … 9 (smallest).
    public static func deflate(_ bytes: [UInt8], format: CompressionFormat = .zlib, level: Int = 6) throws -> [UInt8] {
        guard (0...9).contains(level) else {
            throw DataError.unsupported(file: "<memory>", detail: "compression level \(level) is not in 0...9")
        }
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deinitialize(count: 1); stream.deallocate() }
        let windowBits: Int32 = switch format {
        case .zlib: 15
        case .gzip: 15 + 16
        case .rawDeflate: -15
        }
        let status = deflateInit2_(stream, Int32(level), Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY,
                                   zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            throw DataError.badCompressedData(file: "<memory>", detail: "deflateInit2 failed with status \(status)")
        }
        defer { deflateEnd(stream) }
        var output: [UInt8] = []
        var outChunk = [UInt8](repeating: 0, count: 1 << 16)
        var inputOffset = 0
        try bytes.withUnsafeBytes { input in
            var done = false
            while !done {
                let remaining = input.count - inputOffset
                let take = min(remaining, Int(UInt32.max))
                let last = take == remaining
                stream.pointee.next_in = take == 0 ? nil
                    : UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: UInt8.self) + inputOffset)
                stream.pointee.avail_in = UInt32(take)
                repeat {
                    let produced: Int = try outChunk.withUnsafeMutableBytes { out in
                        stream.pointee.next_out = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
                        stream.pointee.avail_out = UInt32(out.count)
                        let status = CZlib.deflate(stream, last ? Z_FINISH : Z_NO_FLUSH)
                        if status == Z_STREAM_END { done = true }
                        else if status != Z_OK && status != Z_BUF_ERROR {
                            throw DataError.badCompressedData(file: "<memory>", detail: "deflate failed with status \(status)")
                        }
                        return out.count - Int(stream.pointee.avail_out)
                    }
                    output.append(contentsOf: outChunk[0..<produced])
                } while stream.pointee.avail_out == 0 && !done
                inputOffset += take - Int(stream.pointee.avail_in)
            }
        }
        return output
    }

    /// CRC-32 (the polynomial of gzip and PNG) of `bytes`, continuing from `crc`.
    public static func crc32(_ bytes: some Collection<UInt8>, continuing crc: UInt32 = 0) -> UInt32 {
        let array = Array(bytes)
        return array.withUnsafeBufferPointer { buffer in
            var value = UInt(crc)
            var offset = 0
            while offset < buffer.count {
                let take = min(buffer.count - offset, 1 << 30)
                value = CZlib.crc32(value, buffer.baseAddress! + offset, UInt32(take))
                offset += take
            }
            return UInt32(truncatingIfNeeded: value)
        }
    }
}

/// A source of bytes read front to back: an in-memory array or a decompressing stream.
protocol ByteSource: AnyObject {
    /// The file name used in errors.
    var name: String { get }
    /// Appends up to `count` bytes to `output` and returns how many; fewer only at the end.
    func read(_ count: Int, into output: inout [UInt8]) throws -> Int
}

extension ByteSource {
    /// Exactly `count` bytes, or `DataError.truncated` naming `what`.
    func readExactly(_ count: Int, what: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(count, 1 << 20))
        // Read in bounded pieces so a lying header cannot make us allocate more than the data holds.
        while bytes.count < count {
            let got = try read(min(count - bytes.count, 1 << 24), into: &bytes)
            if got == 0 {
                throw DataError.truncated(file: name, detail: "\(what): expected \(count) bytes, found \(bytes.count)")
            }
        }
        return bytes
    }

    /// Reads and drops `count` bytes (through a bounded scratch buffer), or `DataError.truncated`.
    func skip(_ count: Int, what: String) throws {
        var scratch: [UInt8] = []
        var skipped = 0
        while skipped < count {
            scratch.removeAll(keepingCapacity: true)
            let got = try read(min(count - skipped, 1 << 16), into: &scratch)
            if got == 0 {
                throw DataError.truncated(file: name, detail: "\(what): expected \(count) bytes, found \(skipped)")
            }
            skipped += got
        }
    }

    /// Throws `DataError.countMismatch` if any byte remains; for a compressed stream this also
    /// runs the decoder to its end, so the trailer checksum is verified.
    func expectEnd(what: String) throws {
        var extra: [UInt8] = []
        let got = try read(1, into: &extra)
        if got != 0 {
            throw DataError.countMismatch(file: name, detail: "data continues after the \(what)")
        }
    }
}

/// Bytes of an in-memory array, read front to back.
final class ArraySource: ByteSource {
    let bytes: [UInt8]
    let name: String
    private(set) var offset = 0

    init(_ bytes: [UInt8], name: String) {
        self.bytes = bytes
        self.name = name
    }

    var remaining: Int { bytes.count - offset }

    func read(_ count: Int, into output: inout [UInt8]) throws -> Int {
        let take = min(count, remaining)
        output.append(contentsOf: bytes[offset..<(offset + take)])
        offset += take
        return take
    }
}

/// Incremental decompression of a gzip / zlib / raw-deflate stream, held in memory or pulled in
/// chunks from a file, so a reader can parse a header, check the sizes it declares, and only then
/// decompress the payload, and stop as soon as it has what it needs.
final class Inflater: ByteSource {
    let name: String
    /// The compressed bytes at hand; `refill` replaces them when they are used up.
    private var input: [UInt8]
    private var inputOffset = 0
    /// Compressed bytes consumed from earlier chunks (for error messages).
    private var consumedBefore = 0
    /// The next chunk of compressed input, empty at its end; nil when `input` is all there is.
    private let refill: (() throws -> [UInt8])?
    private var inputEnded: Bool
    private let stream: UnsafeMutablePointer<z_stream>
    private let acceptsGzipMembers: Bool
    private(set) var isFinished = false

    convenience init(_ input: [UInt8], format: CompressionFormat?, name: String) throws {
        try self.init(first: input, refill: nil, format: format, name: name)
    }

    /// Decompresses `first` followed by the chunks `refill` returns until it returns none.
    init(first: [UInt8], refill: (() throws -> [UInt8])?, format: CompressionFormat?, name: String) throws {
        self.input = first
        self.refill = refill
        self.inputEnded = refill == nil
        self.name = name
        let windowBits: Int32
        switch format {
        case nil: windowBits = 15 + 32
        case .zlib?: windowBits = 15
        case .gzip?: windowBits = 15 + 16
        case .rawDeflate?: windowBits = -15
        }
        acceptsGzipMembers = format == nil || format == .gzip
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = inflateInit2_(stream, windowBits, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw DataError.badCompressedData(file: name, detail: "inflateInit2 failed with status \(status)")
        }
    }

    /// Makes at least `wanted` unconsumed input bytes available if the source has them; false when
    /// fewer remain. Unconsumed bytes are kept in front of the new chunk.
    private func ensureInput(_ wanted: Int) throws -> Bool {
        while input.count - inputOffset < wanted && !inputEnded {
            guard let refill else { inputEnded = true; break }
            let chunk = try refill()
            if chunk.isEmpty { inputEnded = true; break }
            consumedBefore += inputOffset
            input = Array(input[inputOffset...]) + chunk
            inputOffset = 0
        }
        return input.count - inputOffset >= wanted
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    private func zlibMessage(_ fallback: String) -> String {
        guard let message = stream.pointee.msg else { return fallback }
        return String(cString: message)
    }

    func read(_ count: Int, into output: inout [UInt8]) throws -> Int {
        guard count > 0, !isFinished else { return 0 }
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: count))
        var produced = 0
        defer { if produced < count { output.removeLast(count - produced) } }
        while produced < count && !isFinished {
            _ = try ensureInput(1)
            let status = try inflateStep(into: &output, at: start + produced, count: count - produced, produced: &produced)
            switch status {
            case Z_OK:
                continue
            case Z_STREAM_END:
                _ = try ensureInput(2)
                let left = input.count - inputOffset
                if acceptsGzipMembers && left >= 2 && input[inputOffset] == 0x1f && input[inputOffset + 1] == 0x8b {
                    inflateReset(stream)  // Another gzip member follows, as `cat a.gz b.gz` makes.
                    continue
                }
                if left > 0 {
                    var total = left
                    while !inputEnded, try ensureInput(total + 1) { total = input.count - inputOffset }
                    throw DataError.malformed(file: name, detail: "\(total) unexpected bytes after the end of the compressed stream")
                }
                isFinished = true
            case Z_BUF_ERROR:
                // No progress possible: the input ran out before the stream's end.
                throw DataError.truncated(file: name, detail: "compressed stream ends before its end marker (after \(consumedBefore + inputOffset) bytes)")
            case Z_NEED_DICT:
                throw DataError.badCompressedData(file: name, detail: "stream needs a preset dictionary")
            case Z_MEM_ERROR:
                throw DataError.badCompressedData(file: name, detail: "out of memory while decompressing")
            default:
                throw DataError.badCompressedData(file: name, detail: zlibMessage("zlib status \(status)"))
            }
        }
        return produced
    }

    /// One call of zlib's inflate from the unconsumed input into `output[offset..<offset+count]`.
    private func inflateStep(into output: inout [UInt8], at offset: Int, count: Int, produced: inout Int) throws -> Int32 {
        output.withUnsafeMutableBytes { out in
            input.withUnsafeBytes { inp in
                let remaining = inp.count - inputOffset
                let takeIn = min(remaining, Int(UInt32.max))
                stream.pointee.next_in = takeIn == 0 ? nil
                    : UnsafeMutablePointer(mutating: inp.baseAddress!.assumingMemoryBound(to: UInt8.self) + inputOffset)
                stream.pointee.avail_in = UInt32(takeIn)
                let takeOut = min(count, Int(UInt32.max))
                stream.pointee.next_out = out.baseAddress!.assumingMemoryBound(to: UInt8.self) + offset
                stream.pointee.avail_out = UInt32(takeOut)
                let status = CZlib.inflate(stream, Z_NO_FLUSH)
                inputOffset += takeIn - Int(stream.pointee.avail_in)
                produced += takeOut - Int(stream.pointee.avail_out)
                return status
            }
        }
    }
}
