import CZstd

/// The single zstd frame of a container: compression with the content checksum and content size
/// recorded, and a checked decompression that tells truncation, corruption and checksum errors apart.
package enum ZstdFrame {
    /// The zstd frame magic number 0xFD2FB528, as stored (little endian).
    static let magic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]

    package static var levels: ClosedRange<Int32> { ZSTD_minCLevel()...ZSTD_maxCLevel() }

    /// The fastest regular level: negative levels leave literals uncompressed, so decoding is
    /// mostly a copy.
    package static let rawLiteralsLevel: Int32 = -1

    static func errorName(_ code: Int) -> String {
        guard let name = ZSTD_getErrorName(code) else { return "zstd error \(code)" }
        return String(cString: name)
    }

    /// Compresses `payload` into one frame with ZSTD_c_checksumFlag=1 and the content size set.
    /// `checksum: false` exists only for tests that build a frame the reader must reject.
    package static func compress(_ payload: UnsafeRawBufferPointer, level: Int32, checksum: Bool = true) throws -> [UInt8] {
        guard levels.contains(level) else {
            throw FormatError.compressionFailed(reason: "level \(level) is outside \(levels.lowerBound)...\(levels.upperBound)")
        }
        guard let context = ZSTD_createCCtx() else { throw FormatError.compressionFailed(reason: "out of memory") }
        defer { ZSTD_freeCCtx(context) }
        for (parameter, value) in [(ZSTD_c_compressionLevel, level), (ZSTD_c_checksumFlag, checksum ? 1 : 0), (ZSTD_c_contentSizeFlag, 1)] {
            let result = ZSTD_CCtx_setParameter(context, parameter, value)
            if ZSTD_isError(result) != 0 { throw FormatError.compressionFailed(reason: errorName(result)) }
        }
        let bound = ZSTD_compressBound(payload.count)
        guard ZSTD_isError(bound) == 0 else { throw FormatError.compressionFailed(reason: errorName(bound)) }
        var failure: Int?
        let frame = [UInt8](unsafeUninitializedCapacity: max(bound, 1)) { buffer, initialized in
            let result = ZSTD_compress2(context, buffer.baseAddress, bound, payload.baseAddress, payload.count)
            if ZSTD_isError(result) != 0 {
                failure = result
                initialized = 0
            } else {
                initialized = result
            }
        }
        if let failure { throw FormatError.compressionFailed(reason: errorName(failure)) }
        return frame
    }

    /// Checks the frame that follows the header without decompressing it: magic, checksum flag,
    /// completeness, no trailing bytes, and content size equal to the header's. Returns the frame size.
    package static func check(_ frame: UnsafeRawBufferPointer, header: ContainerHeader) throws -> Int {
        let fileOffset = ContainerHeader.size
        guard frame.count > 0 else { throw FormatError.truncatedFrame(reason: "the file ends right after the header") }
        guard frame.count >= 4 else {
            throw FormatError.truncatedFrame(reason: "only \(frame.count) of the 4 magic bytes are present")
        }
        guard frame.prefix(4).elementsEqual(magic) else {
            throw FormatError.corruptFrame(reason: "bytes \(fileOffset)-\(fileOffset + 3) are not the zstd frame magic 28 B5 2F FD")
        }
        guard frame.count >= 5 else { throw FormatError.truncatedFrame(reason: "the frame header is incomplete") }
        // RFC 8878 3.1.1.1.1: bit 2 of the Frame_Header_Descriptor is the Content_Checksum_flag.
        guard frame[4] & 0x04 != 0 else { throw FormatError.missingChecksum }

        let compressedSize = ZSTD_findFrameCompressedSize(frame.baseAddress, frame.count)
        if ZSTD_isError(compressedSize) != 0 {
            if ZSTD_getErrorCode(compressedSize) == ZSTD_error_srcSize_wrong {
                throw FormatError.truncatedFrame(reason: "the file ends inside the frame (\(frame.count) bytes present)")
            }
            throw FormatError.corruptFrame(reason: errorName(compressedSize))
        }
        guard compressedSize == frame.count else {
            throw FormatError.trailingBytes(offset: fileOffset + compressedSize, count: frame.count - compressedSize)
        }
        let contentSize = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        // ZSTD_CONTENTSIZE_UNKNOWN is (0ULL - 1), ZSTD_CONTENTSIZE_ERROR is (0ULL - 2).
        if contentSize == UInt64.max - 1 { throw FormatError.corruptFrame(reason: "the frame header is invalid") }
        let recorded: UInt64? = contentSize == UInt64.max ? nil : contentSize
        guard recorded == header.payloadSize else {
            throw FormatError.payloadSizeMismatch(header: header.payloadSize, frame: recorded)
        }
        return compressedSize
    }

    /// Decompresses a frame already accepted by `check` into exactly `header.payloadSize` bytes,
    /// verifying the content checksum.
    package static func decompress(_ frame: UnsafeRawBufferPointer, header: ContainerHeader) throws -> [UInt8] {
        guard let size = Int(exactly: header.payloadSize) else {
            throw FormatError.payloadTooLarge(declared: header.payloadSize, limit: Int.max)
        }
        var failure: Error?
        let payload = [UInt8](unsafeUninitializedCapacity: max(size, 1)) { buffer, initialized in
            do {
                try decompress(frame, into: UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[..<size]),
                               header: header)
                initialized = size
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return payload
    }

    /// Decompresses a frame already accepted by `check` into `payload` (exactly `header.payloadSize`
    /// bytes), verifying the content checksum.
    static func decompress(_ frame: UnsafeRawBufferPointer, into payload: UnsafeMutableRawBufferPointer,
                           header: ContainerHeader) throws {
        guard let context = ZSTD_createDCtx() else { throw FormatError.outOfMemory(bytes: payload.count) }
        defer { ZSTD_freeDCtx(context) }
        let result = ZSTD_decompressDCtx(context, payload.baseAddress, payload.count, frame.baseAddress, frame.count)
        if ZSTD_isError(result) != 0 {
            switch ZSTD_getErrorCode(result) {
            case ZSTD_error_checksum_wrong: throw FormatError.checksumMismatch
            case ZSTD_error_srcSize_wrong: throw FormatError.truncatedFrame(reason: errorName(result))
            default: throw FormatError.corruptFrame(reason: errorName(result))
            }
        }
        guard result == payload.count else { throw FormatError.payloadSizeMismatch(header: header.payloadSize, frame: UInt64(result)) }
    }
}
