#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The one buffer a file load decompresses into: the payload at its start, and the zstd frame
/// read into its end and decompressed in place, so the file's bytes never take a buffer of their
/// own. A cold load is mostly page faults on fresh memory (about 2.5 µs per 4 KB page on the VMs
/// measured, more when read(2) faults them), so one buffer fewer is about 90 faults fewer for
/// the Fashion CNN.
///
/// It comes from malloc: a private mapping with MAP_POPULATE faulted its pages no faster here
/// (0.34 ms for 124 pages), and unmapping it cost another 0.1 ms, where malloc's freed blocks are
/// reused by the tensors built next.
struct PayloadBuffer: ~Copyable {
    let bytes: UnsafeMutableRawBufferPointer

    /// Room for `payloadSize` bytes decompressed in place from a frame of `frameSize` bytes
    /// (both already checked against the limits).
    init(payloadSize: Int, frameSize: Int) throws {
        guard let size = PayloadBuffer.inPlaceSize(payloadSize: payloadSize, frameSize: frameSize),
              let base = malloc(max(size, 1)) else {
            throw FormatError.outOfMemory(bytes: payloadSize)
        }
        bytes = UnsafeMutableRawBufferPointer(start: base, count: size)
    }

    deinit { free(bytes.baseAddress) }

    /// zstd decompresses in place when the frame ends where the buffer ends and the buffer holds
    /// the payload plus a margin: the frame header, the checksum, 3 bytes per block and one whole
    /// block (zstd.h, ZSTD_decompressionMargin, with the largest block size, 128 KB). nil when the
    /// size does not fit in an Int.
    static func inPlaceSize(payloadSize: Int, frameSize: Int) -> Int? {
        let block = 128 << 10
        let margin = 18 + 4 + 3 * (payloadSize / block + 1) + block
        let (size, overflow) = payloadSize.addingReportingOverflow(margin)
        return overflow ? nil : max(size, frameSize)
    }

    /// The frame's place: the last `frameSize` bytes.
    func frame(size frameSize: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: bytes[(bytes.count - frameSize)...])
    }
}
