import FuzzDriver
import Glibc
import ModelKitCore
import ModelKitFormat
import ModelKitRuntime

// The model loader on untrusted bytes: container, zstd, protobuf, validation, then a Session
// (graph analysis, shape inference, planning). Limits are a small device's, so a valid but huge
// declared model is refused instead of exhausting the fuzzer's memory.
let limits = Limits(maxPayloadBytes: 1 << 24, maxTensorElements: 1 << 22, maxRank: 8, maxNodes: 10_000)

/// One input. Named LLVMFuzzerTestOneInput because libFuzzer's runtime (linked whole) refers to it;
/// main below hands the same function to LLVMFuzzerRunDriver.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let model = try? ModelFile.decode(bytes, limits: limits) {
        _ = try? Session(model: model, options: SessionOptions(threads: 1, limits: limits))
    }
    return 0
}

exit(modelkit_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv, fuzzOneInput))
