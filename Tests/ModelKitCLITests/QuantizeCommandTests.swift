import Foundation
import ModelKitCore
import ModelKitData
import ModelKitFormat
import Testing

private let mlp = fixture("models/fashion-mlp.mkm")

@Suite("modelkit quantize")
struct QuantizeCommandTests {
    @Test func quantizesEvaluatesAndTheResultRuns() throws {
        let directory = try temporaryDirectory()
        let output = directory + "/mlp-int8.mkm"
        let result = try modelkit("quantize", mlp, "-o", output, "--calibration", fashionTestImages, "--samples", "100",
                                  "--eval", fashionTestImages, "--eval-limit", "300", "--json")
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let inputBytes = try #require(object["input_bytes"] as? Int)
        let outputBytes = try #require(object["output_bytes"] as? Int)
        #expect(Double(outputBytes) <= 0.3 * Double(inputBytes), "\(outputBytes) of \(inputBytes) bytes")
        #expect(object["calibration_samples"] as? Int == 100)
        let accuracy = try #require(object["accuracy"] as? [String: Any])
        let floatAccuracy = try #require(accuracy["float"] as? Double), int8Accuracy = try #require(accuracy["int8"] as? Double)
        #expect(floatAccuracy > 0.8 && abs(floatAccuracy - int8Accuracy) <= 0.02, "\(floatAccuracy) vs \(int8Accuracy)")
        let layers = try #require(object["layers"] as? [[String: Any]])
        #expect(layers.contains { $0["value"] as? String == "logits" })

        // The file is an int8 model that inspect, run and eval take.
        let model = try ModelFile.read(path: output)
        #expect(model.graph.initializers.values.contains { $0.dtype == .int8 })
        #expect(model.metadata.labels.first == "T-shirt/top")
        let inspect = try modelkit("inspect", output)
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("QuantizeLinear") && inspect.stdout.contains("int8"), "\(inspect.stdout)")
        let run = try modelkit("run", output, "--input", fashionTestImages, "--index", "0", "--json")
        #expect(run.status == 0, "\(run.stderr)")
        let eval = try modelkit("eval", output, "--images", fashionTestImages,
                                "--labels", fashionMNIST + "/t10k-labels-idx1-ubyte.gz", "--limit", "300", "--json")
        #expect(eval.status == 0, "\(eval.stderr)")
        let evalObject = try #require(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        #expect(evalObject["accuracy"] as? Double == int8Accuracy)
    }

    @Test func textReportShowsSizesAndWorstLayersFirst() throws {
        let directory = try temporaryDirectory()
        let result = try modelkit("quantize", mlp, "-o", directory + "/q.mkm", "--calibration", fashionTestImages,
                                  "--samples", "40", "--method", "percentile")
        #expect(result.status == 0, "\(result.stderr)")
        for expected in ["input:", "output:", "x)", "percentile 99.99", "per-layer error", "SQNR dB"] {
            #expect(result.stdout.contains(expected), "missing '\(expected)' in:\n\(result.stdout)")
        }
    }

    @Test func badCalibrationDataExits65() throws {
        let directory = try temporaryDirectory()
        // No images.
        let empty = directory + "/empty-images-idx3-ubyte"
        try IDXFile(dataType: .uint8, shape: Shape([0, 28, 28]), data: []).write(to: empty)
        // Images of the wrong size.
        let small = directory + "/small-images-idx3-ubyte"
        try IDXFile(dataType: .uint8, shape: Shape([3, 10, 10]), data: [UInt8](repeating: 9, count: 300)).write(to: small)
        // A float array holding a NaN.
        let nan = directory + "/nan.npy"
        var values = [Float](repeating: 0.5, count: 2 * 784)
        values[100] = .nan
        try NpyArray(shape: Shape([2, 28, 28, 1]), values: values).write(to: nan)
        for (data, message) in [(empty, "holds no images"), (small, "expects"), (nan, "NaN")] {
            let result = try modelkit("quantize", mlp, "-o", directory + "/out.mkm", "--calibration", data)
            #expect(result.status == 65, "\(data): \(result.stderr)")
            #expect(result.stderr.hasPrefix("modelkit: error:") && result.stderr.contains(message), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/out.mkm"))
        let missing = try modelkit("quantize", mlp, "-o", directory + "/out.mkm", "--calibration", directory + "/none.idx")
        #expect(missing.status == 66, "\(missing.stderr)")
        let usage = try modelkit("quantize", mlp, "-o", directory + "/out.mkm", "--calibration", small, "--method", "kl")
        #expect(usage.status == 64)
    }

    @Test func int8InputModelsRunAndEvaluate() throws {
        let directory = try temporaryDirectory()
        let output = directory + "/io.mkm"
        let result = try modelkit("quantize", mlp, "-o", output, "--calibration", fashionTestImages, "--samples", "60",
                                  "--int8-io", "--eval", fashionTestImages, "--eval-limit", "200", "--json")
        #expect(result.status == 0, "\(result.stderr)")
        let model = try ModelFile.read(path: output)
        #expect(model.graph.inputs[0].dtype == .int8)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let accuracy = try #require(object["accuracy"] as? [String: Any])
        let drop = try #require(accuracy["drop"] as? Double)
        #expect(abs(drop) <= 0.03, "accuracy drop \(drop)")
        let run = try modelkit("run", output, "--input", fashionTestImages, "--range", "0:3", "--output", directory + "/scores.npy")
        #expect(run.status == 0, "\(run.stderr)")
        let scores = try NpyArray.read(directory + "/scores.npy")
        #expect(scores.shape == Shape([3, 10]))
        #expect(abs(scores.values[0..<10].reduce(0, +) - 1) < 1e-3)
    }

    @Test func anInt8ModelIsNotQuantizedTwice() throws {
        let directory = try temporaryDirectory()
        let once = directory + "/once.mkm"
        #expect(try modelkit("quantize", mlp, "-o", once, "--calibration", fashionTestImages, "--samples", "20").status == 0)
        let twice = try modelkit("quantize", once, "-o", directory + "/twice.mkm", "--calibration", fashionTestImages)
        #expect(twice.status == 65 && twice.stderr.contains("already quantized"), "\(twice.stderr)")
    }
}
