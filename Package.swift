// swift-tools-version:6.0
import Foundation
import PackageDescription

// The modelkit executable links the Swift runtime and Foundation statically (start-up time), except
// under the sanitizers: static Foundation hands its own blocks to ASan's free. Tools/sanitize sets
// MODELKIT_DYNAMIC_CLI=1.
let cliLinkerSettings: [LinkerSetting] = ProcessInfo.processInfo.environment["MODELKIT_DYNAMIC_CLI"] == nil
    ? [.unsafeFlags(["-static-stdlib", "-use-ld=lld", "-lCoreFoundation", "-l_FoundationICU", "-l_FoundationCShims", "-l_FoundationCollections"])]
    : []

// One-way flow: schema/format -> graph IR -> passes -> runtime planner -> kernels.
// The runtime core (ModelKitCore, ModelKitFormat, ModelKitRuntime) imports no Foundation.
let package = Package(
    name: "modelkit",
    products: [
        .executable(name: "modelkit", targets: ["modelkit"]),
        .library(name: "ModelKitRuntime", targets: ["ModelKitRuntime"]),
        // The C API (Sources/CModelKitAPI/include/modelkit.h) as a shared and a static library.
        .library(name: "modelkit_c", type: .dynamic, targets: ["ModelKitC"]),
        .library(name: "modelkit_c_static", type: .static, targets: ["ModelKitC"]),
        // For the fuzz package (Fuzz/), which builds the readers with -sanitize=fuzzer,address.
        .library(name: "ModelKitFormat", targets: ["ModelKitFormat"]),
        .library(name: "ModelKitONNX", targets: ["ModelKitONNX"]),
        .library(name: "ModelKitData", targets: ["ModelKitData"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries.
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CProtobufC", path: "Sources/CProtobufC", pkgConfig: "libprotobuf-c",
                       providers: [.apt(["libprotobuf-c-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // Ed25519 signatures for models: a C library, so the signing code stays Foundation-free.
        .systemLibrary(name: "CSodium", path: "Sources/CSodium", pkgConfig: "libsodium",
                       providers: [.apt(["libsodium-dev"])]),

        // protoc-c output for Schemas/*.proto, committed; Tools/generate-schemas rewrites it.
        .target(name: "CModelKitSchema", dependencies: ["CProtobufC"], path: "Sources/CModelKitSchema"),
        // protoc-c output for Schemas/onnx_subset.proto, committed; Tools/generate-onnx-schema rewrites it.
        .target(name: "CONNXSchema", dependencies: ["CProtobufC"], path: "Sources/CONNXSchema"),

        // Runtime core.
        .target(name: "ModelKitCore"),
        // A C-allocation arena for building protobuf-c message trees, shared by the writers.
        .target(name: "ModelKitProtobuf", dependencies: ["CProtobufC"]),
        .target(name: "ModelKitFormat", dependencies: ["ModelKitCore", "ModelKitProtobuf", "CZstd", "CModelKitSchema"]),
        .target(name: "ModelKitRuntime", dependencies: ["ModelKitCore", "ModelKitFormat", "CModelKitKernels"]),

        // Graph optimization passes (fold BatchNormalization, fuse activations, constant folding, ...).
        .target(name: "ModelKitPasses", dependencies: ["ModelKitCore", "ModelKitRuntime"]),

        // ONNX import (NCHW ONNX graphs -> NHWC modelkit graphs).
        .target(name: "ModelKitONNX", dependencies: ["ModelKitCore", "ModelKitProtobuf", "CONNXSchema"]),

        // Dataset and input readers (IDX, .npy, PNG); shared by the CLI and the trainer.
        .target(name: "ModelKitData", dependencies: ["ModelKitCore", "CZlib"]),

        // Command line.
        .target(name: "ModelKitCLI", dependencies: [
            "ModelKitCore", "ModelKitFormat", "ModelKitRuntime", "ModelKitData", "ModelKitTrainer",
            "ModelKitPasses", "ModelKitONNX",
            "ModelKitSigning",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The Swift runtime and Foundation linked in statically: the dynamic loader's symbol binding
        // for them was most of a one-image `modelkit run` (about 12 of 17 ms of CPU before main).
        .executableTarget(name: "modelkit", dependencies: ["ModelKitCLI"],
                          linkerSettings: cliLinkerSettings),

        // Signed models: key files, detached .sig files, and a Session that loads only verified bytes.
        .target(name: "ModelKitSigning", dependencies: ["ModelKitCore", "ModelKitFormat", "ModelKitRuntime", "CSodium"]),
        .testTarget(name: "ModelKitSigningTests", dependencies: ["ModelKitTestSupport", "ModelKitSigning", "ModelKitFormat", "ModelKitRuntime"]),

        // Tests, and the helpers they share (repository paths, temporary directories, processes).
        .target(name: "ModelKitTestSupport", path: "Tests/ModelKitTestSupport"),
        .testTarget(name: "ModelKitCoreTests", dependencies: ["ModelKitCore"]),
        .testTarget(name: "ModelKitFormatTests", dependencies: ["ModelKitTestSupport", "ModelKitFormat", "ModelKitRuntime"]),
        .testTarget(name: "ModelKitRuntimeTests", dependencies: ["ModelKitTestSupport", "ModelKitRuntime", "ModelKitFormat", "CAVX512Model"]),
        .testTarget(name: "ModelKitDataTests", dependencies: ["ModelKitData"]),
        .testTarget(name: "ModelKitCLITests", dependencies: ["ModelKitTestSupport", "ModelKitCLI", "ModelKitFormat", "ModelKitData"]),
        .testTarget(name: "ModelKitONNXTests", dependencies: ["ModelKitONNX", "ModelKitRuntime"]),

        // Training compute: SIMD GEMM with runtime dispatch, layers with backward, optimizers.
        .target(name: "CModelKitKernels", path: "Sources/CModelKitKernels"),
        .target(name: "ModelKitTraining", dependencies: ["ModelKitCore", "CModelKitKernels"]),
        // The training loop, model specs, checkpoints and resume.
        .target(name: "ModelKitTrainer", dependencies: ["ModelKitCore", "ModelKitTraining", "ModelKitFormat", "ModelKitData"]),
        .testTarget(name: "ModelKitTrainerTests", dependencies: ["ModelKitTestSupport", "ModelKitTrainer", "ModelKitFormat", "ModelKitData"]),
        .testTarget(name: "ModelKitTrainingTests", dependencies: ["ModelKitTestSupport", "ModelKitTraining", "CModelKitKernels", "ModelKitCore"]),
        .executableTarget(name: "TrainingBenchmark", dependencies: ["ModelKitTraining", "CModelKitKernels", "CZlib"],
                          path: "Tools/TrainingBenchmark"),
        .testTarget(name: "ModelKitPassesTests", dependencies: ["ModelKitPasses", "ModelKitRuntime"]),
        // The C API: the hand-written header (a C target, so Swift checks the struct layouts) and its
        // @_cdecl implementation over Session.
        .target(name: "CModelKitAPI", path: "Sources/CModelKitAPI"),
        .target(name: "ModelKitC", dependencies: ["CModelKitAPI", "ModelKitCore", "ModelKitFormat", "ModelKitRuntime"]),
        .testTarget(name: "ModelKitCTests", dependencies: ["ModelKitTestSupport", "ModelKitC", "CModelKitAPI", "ModelKitData", "CAllocationCounter"]),
        // Test support: counts heap allocations by interposing malloc & co. (glibc).
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),
        // Test support: the AVX-512 VNNI int8 GEMM's source on scalar models of its intrinsics.
        .target(name: "CAVX512Model", dependencies: ["CModelKitKernels"], path: "Tests/CAVX512Model",
                cSettings: [.headerSearchPath(".")]),
        .testTarget(name: "ModelKitRuntimeParallelTests",
                    dependencies: ["ModelKitTestSupport", "ModelKitRuntime", "ModelKitFormat", "ModelKitCore", "CAllocationCounter"]),
        .testTarget(name: "ModelKitONNXExportTests",
                    dependencies: ["ModelKitONNX", "ModelKitRuntime", "ModelKitFormat", "ModelKitPasses"]),
    ]
)
