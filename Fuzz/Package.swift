// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for modelkit's readers of untrusted bytes. Kept out of the main package because
// they only link with -sanitize=fuzzer; build and run them with Tools/fuzz TARGET SECONDS.
let format = Target.Dependency.product(name: "ModelKitFormat", package: "modelkit")
let runtime = Target.Dependency.product(name: "ModelKitRuntime", package: "modelkit")
let onnx = Target.Dependency.product(name: "ModelKitONNX", package: "modelkit")
let data = Target.Dependency.product(name: "ModelKitData", package: "modelkit")

let package = Package(
    name: "modelkit-fuzz",
    dependencies: [
        .package(path: "modelkit"),  // a symlink to the repository, so the identity is "modelkit" in any checkout
    ],
    targets: [
        .target(name: "FuzzDriver", path: "Sources/FuzzDriver"),
        // zstd for fuzz-model's payload mode, which wraps fuzzed protobuf bytes in a valid container.
        .systemLibrary(name: "CFuzzZstd", path: "Sources/CFuzzZstd", pkgConfig: "libzstd"),
        .executableTarget(name: "fuzz-model", dependencies: ["FuzzDriver", "CFuzzZstd", runtime, format],
                          path: "Sources/fuzz-model"),
        .executableTarget(name: "fuzz-onnx", dependencies: ["FuzzDriver", runtime, onnx], path: "Sources/fuzz-onnx"),
        .executableTarget(name: "fuzz-idx", dependencies: ["FuzzDriver", data], path: "Sources/fuzz-idx"),
        .executableTarget(name: "fuzz-npy", dependencies: ["FuzzDriver", data], path: "Sources/fuzz-npy"),
        .executableTarget(name: "fuzz-png", dependencies: ["FuzzDriver", data], path: "Sources/fuzz-png"),
    ]
)
