import FuzzDriver
import Glibc
import ModelKitData

// The reader of PNG images (zlib inflate, filters, Adam7) on untrusted bytes.
let limits = DataLimits(maxDecodedBytes: 1 << 24, maxImagePixels: 1 << 22)

/// One input. Named LLVMFuzzerTestOneInput because libFuzzer's runtime (linked whole) refers to it;
/// main below hands the same function to LLVMFuzzerRunDriver.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? PNG.decode(bytes, limits: limits)
    return 0
}

exit(modelkit_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv, fuzzOneInput))
