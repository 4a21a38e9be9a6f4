import CFuzzZstd
import FuzzDriver
import Glibc
import ModelKitCore
import ModelKitFormat
import ModelKitRuntime

// The model loader on untrusted bytes: container, zstd, protobuf, validation, then a Session
// (graph analysis, shape inference, planning). Limits are a small device's, so a valid but huge
// declared model is refused instead of exhausting the fuzzer's memory.
let limits = Limits(maxPayloadBytes: 1 << 24, maxTensorElements: 1 << 22, maxRank: 8, maxNodes: 10_000)

/// The first input byte picks what the rest is:
/// - even: a whole .mkm/.mkc file, as read from disk (exercises the header and zstd checks);
/// - odd: a protobuf payload, wrapped here in a valid header and checksummed zstd frame, so
///   mutations reach the protobuf decoder, the validator and the Session instead of dying at the
///   frame checksum. Seeds for both modes are in Fixtures/fuzz/model (payload-*.bin are odd).
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let rest = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let bytes = data[0] & 1 == 0 ? rest : container(payload: rest)
    if let model = try? ModelFile.decode(bytes, limits: limits) {
        _ = try? Session(model: model, options: SessionOptions(threads: 1, limits: limits))
    }
    return 0
}

/// Header (FORMAT.md §1: magic, version 1.0, flags 0, payload size) + one zstd frame with content
/// size and checksum.
func container(payload: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = [0x89, 0x4D, 0x4B, 0x4D, 0x0D, 0x0A, 0x1A, 0x0A, 1, 0, 0, 0, 0, 0, 0, 0]
    for index in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: UInt64(payload.count) >> (8 * UInt64(index)))) }
    let context = ZSTD_createCCtx()
    defer { ZSTD_freeCCtx(context) }
    ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
    ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, 1)
    var frame = [UInt8](repeating: 0, count: ZSTD_compressBound(payload.count))
    let written = ZSTD_compress2(context, &frame, frame.count, payload, payload.count)
    guard ZSTD_isError(written) == 0 else { fatalError("zstd could not compress \(payload.count) bytes") }
    return bytes + frame.prefix(written)
}

exit(modelkit_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv, fuzzOneInput))
