#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The buffer a file load decompresses into, exactly the payload's size. Its pages are faulted in
/// with one call before zstd writes them (`FreshPages`). The zstd frame is read elsewhere: into
/// the block the message tree is unpacked into next (`UnpackArena`), so the file's bytes take no
/// memory of their own. (It used to be read into this buffer's end and decompressed in place,
/// which needs a margin of one 128 KB block: 32 more fresh pages than the frame's own, ~0.1 ms.)
///
/// It comes from malloc: freed once protobuf-c has unpacked it, its pages are reused by the
/// tensors built next.
struct PayloadBuffer: ~Copyable {
    let bytes: UnsafeMutableRawBufferPointer

    /// Room for `payloadSize` bytes (already checked against the limits).
    init(payloadSize: Int) throws {
        guard let base = malloc(max(payloadSize, 1)) else { throw FormatError.outOfMemory(bytes: payloadSize) }
        bytes = UnsafeMutableRawBufferPointer(start: base, count: payloadSize)
        FreshPages.populate(base, count: payloadSize)
    }

    deinit { free(bytes.baseAddress) }
}
