import Foundation
import ModelKitCore
import ModelKitData
import ModelKitFormat
import Testing

private let mlp = fixture("models/fashion-mlp.mkm")

/// Fashion-MNIST test images [from, from + count) as normalised floats [count, 28, 28, 1].
private func fashionSamples(_ range: Range<Int>) throws -> [Float] {
    let images = try IDXFile.read(fashionTestImages)
    let model = try ModelFile.read(path: mlp)
    let normalization = try #require(model.metadata.normalization)
    return images.data[(range.lowerBound * 784)..<(range.upperBound * 784)].map { normalization.apply(Float($0), channel: 0) }
}

private func jsonObject(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}

@Suite("modelkit quantize: calibration folders, entropy, accuracy guard, ONNX input")
struct QuantizeCalibrationCLITests {
    @Test func folderOfNpyAndPngFilesCalibratesInNameOrder() throws {
        let directory = try temporaryDirectory()
        let folder = directory + "/calibration"
        try FileManager.default.createDirectory(atPath: folder + "/nested.npy", withIntermediateDirectories: true)
        let values = try fashionSamples(0..<4)
        try NpyArray(shape: Shape([3, 28, 28, 1]), values: Array(values[0..<(3 * 784)])).write(to: folder + "/a-batch.npy")
        try NpyArray(shape: Shape([28, 28, 1]), values: Array(values[(3 * 784)...])).write(to: folder + "/b-one.npy")
        let pixels = try IDXFile.read(fashionTestImages).data[(4 * 784)..<(5 * 784)]
        try PNG.write(Image(width: 28, height: 28, channels: 1, pixels: Array(pixels)), to: folder + "/c-image.PNG")
        try Data("not calibration data".utf8).write(to: URL(fileURLWithPath: folder + "/notes.txt"))

        let all = try modelkit("quantize", mlp, "-o", directory + "/all.mkm", "--calibration", folder, "--json")
        #expect(all.status == 0, "\(all.stderr)")
        #expect(try jsonObject(all.stdout)["calibration_samples"] as? Int == 5)
        // --samples takes the first samples in name order: the batch file, then one of the single one.
        let first = try modelkit("quantize", mlp, "-o", directory + "/first.mkm", "--calibration", folder, "--samples", "4", "--json")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try jsonObject(first.stdout)["calibration_samples"] as? Int == 4)
        // Those four samples as one .npy calibrate to the very same file.
        try NpyArray(shape: Shape([4, 28, 28, 1]), values: values).write(to: directory + "/four.npy")
        let same = try modelkit("quantize", mlp, "-o", directory + "/same.mkm", "--calibration", directory + "/four.npy")
        #expect(same.status == 0, "\(same.stderr)")
        let a = try ModelFile.read(path: directory + "/first.mkm"), b = try ModelFile.read(path: directory + "/same.mkm")
        #expect(a.graph == b.graph)
    }

    @Test func badCalibrationFilesAreNamed() throws {
        let directory = try temporaryDirectory()
        func folder(_ name: String, _ files: [String: (Shape, [Float])] = [:], raw: [String: [UInt8]] = [:]) throws -> String {
            let path = directory + "/" + name
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            for (file, (shape, values)) in files { try NpyArray(shape: shape, values: values).write(to: path + "/" + file) }
            for (file, bytes) in raw { try Data(bytes).write(to: URL(fileURLWithPath: path + "/" + file)) }
            return path
        }
        let good = (Shape([28, 28, 1]), [Float](repeating: 0.1, count: 784))
        var nan = [Float](repeating: 0.1, count: 2 * 784)
        nan[900] = .nan
        var infinite = [Float](repeating: 0.1, count: 784)
        infinite[5] = .infinity
        let cases: [(String, [String])] = [
            (try folder("empty"), ["holds no .npy or .png files"]),
            (try folder("text-only", raw: ["readme.txt": Array("hi".utf8)]), ["holds no .npy or .png files"]),
            (try folder("wrong-shape", ["a.npy": good, "b.npy": (Shape([2, 10, 10]), [Float](repeating: 0, count: 200))]),
             ["b.npy", "does not fit model input", "28"]),
            (try folder("nan", ["a.npy": good, "b.npy": (Shape([2, 28, 28, 1]), nan)]), ["b.npy", "NaN", "sample 1"]),
            (try folder("infinite", ["x.npy": (Shape([28, 28, 1]), infinite)]), ["x.npy", "infinite"]),
            (try folder("empty-array", ["a.npy": (Shape([0, 28, 28, 1]), [])]), ["a.npy", "holds no samples"]),
            (try folder("corrupt", ["a.npy": good], raw: ["b.png": Array("this is not a png".utf8)]), ["b.png"]),
            (try folder("small-png", raw: ["img.png": try PNG.encode(Image(width: 5, height: 5, channels: 1,
                                                                                pixels: [UInt8](repeating: 7, count: 25)))]),
             ["img.png", "expects", "28"]),
        ]
        for (path, fragments) in cases {
            let result = try modelkit("quantize", mlp, "-o", directory + "/out.mkm", "--calibration", path)
            #expect(result.status == 65, "\(path): \(result.stderr)")
            #expect(result.stderr.hasPrefix("modelkit: error:") && result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
            for fragment in fragments {
                #expect(result.stderr.contains(fragment), "\(path): '\(fragment)' missing from \(result.stderr)")
            }
        }
        // A single empty or NaN .npy file, not in a folder.
        try NpyArray(shape: Shape([0, 28, 28, 1]), values: []).write(to: directory + "/none.npy")
        try NpyArray(shape: Shape([2, 28, 28, 1]), values: nan).write(to: directory + "/nan.npy")
        for (file, fragment) in [("none.npy", "holds no samples"), ("nan.npy", "NaN")] {
            let result = try modelkit("quantize", mlp, "-o", directory + "/out.mkm", "--calibration", directory + "/" + file)
            #expect(result.status == 65 && result.stderr.contains(file) && result.stderr.contains(fragment), "\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/out.mkm"))
    }

    @Test func entropyMethodQuantizesAndRecordsItself() throws {
        let directory = try temporaryDirectory()
        let output = directory + "/entropy.mkm"
        let result = try modelkit("quantize", mlp, "-o", output, "--calibration", fashionTestImages, "--samples", "100",
                                  "--method", "entropy", "--eval", fashionTestImages, "--eval-limit", "300", "--json")
        #expect(result.status == 0, "\(result.stderr)")
        let object = try jsonObject(result.stdout)
        #expect(object["method"] as? String == "entropy")
        #expect(object["float_layers"] as? [String] == [])
        let accuracy = try #require(object["accuracy"] as? [String: Any])
        let drop = try #require(accuracy["drop"] as? Double)
        #expect(abs(drop) <= 0.02, "drop \(drop)")
        #expect(try ModelFile.read(path: output).metadata.properties["quantization.method"] == "entropy")
        // Not a terminal: no progress bar in the output.
        #expect(!result.stdout.contains("calibrating") && !result.stderr.contains("calibrating"))
    }

    /// fashion-mlp with row 0 of dense2 hugely negative: dense2 reads post-ReLU values, so the float
    /// model only loses class 0, but one weight scale per tensor (--per-tensor) rounds every other row
    /// of dense2 to zero. The guard has to keep exactly dense2 float.
    @Test func accuracyGuardKeepsTheSensitiveLayerFloat() throws {
        let directory = try temporaryDirectory()
        var model = try ModelFile.read(path: mlp)
        let dense2 = try #require(model.graph.nodes.first { $0.name == "dense2" })
        var weights = try #require(model.graph.initializers[dense2.inputs[1]]?.floats)
        for k in 0..<128 { weights[k] = -300 }
        model.graph.initializers[dense2.inputs[1]] = Tensor(shape: Shape([10, 128]), floats: weights)
        let sensitive = directory + "/sensitive.mkm"
        try ModelFile.write(model, to: sensitive)

        let common = ["quantize", sensitive, "--calibration", fashionTestImages, "--samples", "100", "--per-tensor",
                      "--eval", fashionTestImages, "--eval-limit", "300", "--json"]
        let plain = try modelkit(arguments: common + ["-o", directory + "/plain.mkm"])
        #expect(plain.status == 0, "\(plain.stderr)")
        let plainDrop = try #require((try jsonObject(plain.stdout)["accuracy"] as? [String: Any])?["drop"] as? Double)
        #expect(plainDrop > 0.2, "the unguarded model should collapse, drop \(plainDrop)")

        let output = directory + "/guarded.mkm"
        let guarded = try modelkit(arguments: common + ["-o", output, "--max-accuracy-drop", "1"])
        #expect(guarded.status == 0, "\(guarded.stderr)")
        let object = try jsonObject(guarded.stdout)
        #expect(object["float_layers"] as? [String] == ["dense2"])
        #expect(object["max_accuracy_drop"] as? Double == 1)
        let ranking = try #require(object["sensitivity"] as? [[String: Any]])
        #expect(ranking.first?["node"] as? String == "dense2")
        let drop = try #require((object["accuracy"] as? [String: Any])?["drop"] as? Double)
        #expect(drop <= 0.01, "drop \(drop)")
        // In the written file dense2 is a float Dense between a DequantizeLinear and the float Softmax;
        // dense1 is still int8.
        let written = try ModelFile.read(path: output)
        let node = try #require(written.graph.nodes.first { $0.name == "dense2" })
        #expect(written.graph.initializers[node.inputs[1]]?.dtype == .float32)
        #expect(written.graph.nodes.first { $0.outputs == [node.inputs[0]] }?.operation == .dequantizeLinear)
        let dense1 = try #require(written.graph.nodes.first { $0.name == "dense1" })
        #expect(written.graph.initializers[dense1.inputs[1]]?.dtype == .int8)
        #expect(written.metadata.properties["quantization.float_layers"] == "dense2")

        let text = try modelkit(arguments: Array(common.dropLast()) + ["-o", directory + "/text.mkm", "--max-accuracy-drop", "1"])
        #expect(text.stdout.contains("float layers: dense2"), "\(text.stdout)")
        let withoutEval = try modelkit("quantize", mlp, "-o", directory + "/x.mkm", "--calibration", fashionTestImages,
                                       "--max-accuracy-drop", "0.5")
        #expect(withoutEval.status == 64 && withoutEval.stderr.contains("--eval"), "\(withoutEval.stderr)")
    }

    /// An ONNX file (tf2onnx's Keras CNN fixture, NHWC) is imported and quantized like a .mkm; the int8
    /// model picks the same class as the float import on held-out inputs.
    @Test func onnxModelQuantizesAndAgreesWithItsFloatImport() throws {
        let directory = try temporaryDirectory()
        let onnx = fixture("onnx/keras_cnn.onnx")
        var random = SplitMix64(seed: 17)
        let calibration = (0..<64 * 784).map { _ in random.float() * 0.5 + 0.5 }
        let held = (0..<100 * 784).map { _ in random.float() * 0.5 + 0.5 }
        try NpyArray(shape: Shape([64, 28, 28, 1]), values: calibration).write(to: directory + "/calibration.npy")
        try NpyArray(shape: Shape([100, 28, 28, 1]), values: held).write(to: directory + "/held.npy")

        let int8 = directory + "/keras-int8.mkm"
        let result = try modelkit("quantize", onnx, "-o", int8, "--calibration", directory + "/calibration.npy", "--json")
        #expect(result.status == 0, "\(result.stderr)")
        let object = try jsonObject(result.stdout)
        #expect(object["int8_nodes"] as? Int ?? 0 >= 5, "\(object)")
        let float = directory + "/keras.mkm"
        #expect(try modelkit("export", onnx, "-o", float).status == 0)
        for (model, scores) in [(float, "float.npy"), (int8, "int8.npy")] {
            let run = try modelkit("run", model, "--input", directory + "/held.npy", "--output", directory + "/" + scores)
            #expect(run.status == 0, "\(run.stderr)")
        }
        let a = try NpyArray.read(directory + "/float.npy").values, b = try NpyArray.read(directory + "/int8.npy").values
        #expect(a.count == 1000 && b.count == 1000)
        var same = 0
        for row in 0..<100 {
            let x = a[(row * 10)..<(row * 10 + 10)], y = b[(row * 10)..<(row * 10 + 10)]
            if x.indices.max(by: { x[$0] < x[$1] }) == y.indices.max(by: { y[$0] < y[$1] }) { same += 1 }
        }
        #expect(same >= 90, "top-1 agreement \(same)/100")
    }
}
