import FuzzDriver
import Glibc
import ModelKitCore
import ModelKitONNX
import ModelKitRuntime

// The ONNX importer on untrusted bytes (protobuf, initializers, operator conversion), then a
// Session over what it produced, as `modelkit export` would.
let limits = Limits(maxPayloadBytes: 1 << 24, maxTensorElements: 1 << 22, maxRank: 8, maxNodes: 10_000)

/// One input. Named LLVMFuzzerTestOneInput because libFuzzer's runtime (linked whole) refers to it;
/// main below hands the same function to LLVMFuzzerRunDriver.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let model = try? ONNXImporter.importModel(bytes: bytes, limits: limits) {
        _ = try? Session(model: model, options: SessionOptions(threads: 1, limits: limits))
    }
    return 0
}

exit(modelkit_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv, fuzzOneInput))
