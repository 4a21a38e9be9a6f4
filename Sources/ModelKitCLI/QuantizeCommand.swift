import ArgumentParser
import Foundation
import ModelKitCore
import ModelKitData
import ModelKitFormat
import ModelKitONNX
import ModelKitPasses
import ModelKitRuntime

struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Post-training int8 quantization: calibrate on sample inputs, write an int8 model.",
        discussion: """
            Runs the standard graph passes, then the float model over the calibration samples to find \
            each activation's range. Conv2D, Dense and Add become int8 (weights symmetric per output \
            channel, activations asymmetric per tensor, int32 bias); pools, Flatten, Reshape and Concat \
            stay int8 between them; other ops stay float. Model inputs and outputs stay float unless \
            --int8-io. Prints file sizes, per-layer error (SQNR) worst first, and with --eval the float \
            and int8 accuracy. With --max-accuracy-drop, the layers that cost the most accuracy stay \
            float (quantize/dequantize at their edges) until the drop is within the bound.
            """)

    @Argument(help: "A float .mkm model or an .onnx model (imported first).")
    var model: String

    @Option(name: .shortAndLong, help: "The int8 model to write (.mkm).")
    var output: String

    @Option(help: "Calibration inputs: an IDX dataset directory (train split), an IDX images file, a .npy array, a PNG, or a folder of .npy/.png files (name order).")
    var calibration: String

    @Option(help: "Calibration samples to use (the first N).")
    var samples = 500

    @Option(help: "Range choice: minmax, percentile or entropy (least KL divergence).")
    var method = "minmax"

    @Option(help: "Percentile kept on each side with --method percentile.")
    var percentile = 99.99

    @Flag(name: .customLong("per-tensor"), help: "One weight scale per tensor instead of per output channel.")
    var perTensor = false

    @Flag(name: .customLong("int8-io"), help: "int8 model input (and int8 outputs where the last op is int8).")
    var int8IO = false

    @Option(help: "Measure float and int8 accuracy on a labelled IDX dataset directory (test split) or images file.")
    var eval: String?

    @Option(help: "Evaluate only the first N samples of --eval.")
    var evalLimit: Int?

    @Option(help: "Largest accuracy drop allowed, in percentage points (needs --eval); the most sensitive layers stay float until it holds.")
    var maxAccuracyDrop: Double?

    @Option(help: "Samples per inference batch.")
    var batch = 100

    @Option(help: "Layers shown in the per-layer error table (all with --json).")
    var layers = 10

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func validate() throws {
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard ["minmax", "percentile", "entropy"].contains(method) else {
            throw ValidationError("--method must be minmax, percentile or entropy")
        }
        if let maxAccuracyDrop {
            guard maxAccuracyDrop >= 0, maxAccuracyDrop.isFinite else { throw ValidationError("--max-accuracy-drop must be 0 or more") }
            guard eval != nil else { throw ValidationError("--max-accuracy-drop needs --eval (a labelled dataset to measure the drop on)") }
        }
        guard percentile > 50, percentile <= 100 else { throw ValidationError("--percentile must be in (50, 100]") }
        if let evalLimit, evalLimit < 1 { throw ValidationError("--eval-limit must be at least 1") }
    }

    func run() throws {
        try reportingFailures {
            let loaded = try ExportSource(path: model)
            guard loaded.model.kind == .model else {
                throw CommandFailure.data("\(model) is a checkpoint; export it to a model first (modelkit export)")
            }
            guard loaded.model.graph.initializers.values.allSatisfy({ $0.dtype == .float32 }),
                  loaded.model.graph.valueQuantization.isEmpty else {
                throw CommandFailure.data("\(model) is already quantized")
            }
            let batches = try CalibrationData.load(path: calibration, samples: samples, batch: batch, model: loaded.model)
            let calibrationMethod: CalibrationMethod
            switch method {
            case "percentile": calibrationMethod = .percentile(percentile)
            case "entropy": calibrationMethod = .entropy
            default: calibrationMethod = .minMax
            }
            let options = QuantizationOptions(method: calibrationMethod, perTensorWeights: perTensor, int8IO: int8IO)
            let bar = ProgressBar(enabled: !json)
            var result = try PostTrainingQuantization(model: loaded.model, batches: batches, options: options) { done, total in
                bar.update(done: done, total: total, text: "calibrating: batch \(done)/\(total)")
            }
            bar.finish(clear: true)

            let dataset = try eval.map(loadEvaluationData)
            let floatEvaluation = try dataset.map {
                try Evaluation.run(model: loaded.model, dataset: $0, limit: evalLimit, batch: batch, threads: 1)
            }
            var accuracyGuard: AccuracyGuard.Outcome?
            if let maxAccuracyDrop, let dataset, let floatEvaluation {
                var evaluations = 0
                accuracyGuard = try AccuracyGuard.run(result, floatAccuracy: floatEvaluation.accuracy, maxDrop: maxAccuracyDrop / 100,
                                                      sensitivityBatches: Array(batches.prefix(2))) { candidate in
                    evaluations += 1
                    bar.update(done: evaluations, total: evaluations + 1, text: "accuracy guard: evaluation \(evaluations)")
                    return try Evaluation.run(model: candidate, dataset: dataset, limit: evalLimit, batch: batch, threads: 1).accuracy
                }
                bar.finish(clear: true)
                result = accuracyGuard!.quantization
            }
            let bytes = try ModelFile.encode(result.model)
            // What was written must load and run.
            let written = try ModelFile.decode(bytes)
            _ = try Session(model: written)
            try FileSystem.writeFileAtomically(output, bytes: bytes)

            let layerErrors = try QuantizationDiagnostics.layerErrors(float: result.floatGraph, quantized: written.graph,
                                                                      batches: Array(batches.prefix(2)))
            var evaluations: (Evaluation, Evaluation)?
            if let dataset, let floatEvaluation {
                evaluations = (floatEvaluation, try Evaluation.run(model: written, dataset: dataset, limit: evalLimit, batch: batch, threads: 1))
            }
            let floatLayers = accuracyGuard?.floatLayers ?? []
            let calibrated = batches.reduce(0) { $0 + $1.shape[0] }
            let counts = operationCounts(written.graph)
            let ratio = Double(bytes.count) / Double(max(loaded.fileBytes, 1))
            if json {
                var object: [String: Any] = [
                    "input": model, "output": output, "input_bytes": loaded.fileBytes, "output_bytes": bytes.count,
                    "size_ratio": ratio, "calibration_samples": calibrated, "method": method,
                    "weights": perTensor ? "per-tensor" : "per-channel", "int8_io": int8IO,
                    "int8_nodes": counts.int8, "float_nodes": counts.float, "float_layers": floatLayers,
                    "layers": layerErrors.map { e -> [String: Any] in
                        ["node": e.node, "value": e.value, "sqnr_db": e.sqnrDecibels.isFinite ? e.sqnrDecibels as Any : NSNull(),
                         "cosine": e.cosine]
                    },
                ]
                if let (fp32, int8) = evaluations {
                    object["accuracy"] = ["samples": fp32.total, "float": fp32.accuracy, "int8": int8.accuracy,
                                          "drop": fp32.accuracy - int8.accuracy]
                }
                if let maxAccuracyDrop, let accuracyGuard {
                    object["max_accuracy_drop"] = maxAccuracyDrop
                    object["sensitivity"] = accuracyGuard.ranking.map { s -> [String: Any] in
                        ["node": s.node, "output_sqnr_db": s.outputSQNRDecibels.isFinite ? s.outputSQNRDecibels as Any : NSNull()]
                    }
                }
                print(try jsonText(object))
                return
            }
            print("input:        \(model) (float, \(grouped(loaded.fileBytes)) bytes)")
            print("output:       \(output) (int8, \(grouped(bytes.count)) bytes, \(formatted(ratio, decimals: 3))x)")
            print("calibration:  \(calibrated) samples from \(calibration), \(method == "percentile" ? "percentile \(percentile)" : method), "
                  + "weights \(perTensor ? "per tensor" : "per channel")")
            print("nodes:        \(counts.int8) int8, \(counts.float) float, \(counts.conversions) quantize/dequantize")
            if let (fp32, int8) = evaluations {
                print("accuracy:     float \(formatted(fp32.accuracy, decimals: 4)), int8 \(formatted(int8.accuracy, decimals: 4)) "
                      + "(drop \(formatted((fp32.accuracy - int8.accuracy) * 100, decimals: 2)) points, \(fp32.total) samples)")
            }
            if let maxAccuracyDrop {
                print("float layers: " + (floatLayers.isEmpty ? "none" : floatLayers.joined(separator: ", "))
                      + " (kept float by --max-accuracy-drop \(formatted(maxAccuracyDrop, decimals: 2)))")
            }
            print("")
            print("per-layer error vs float (worst first, \(Array(batches.prefix(2)).reduce(0) { $0 + $1.shape[0] }) samples):")
            var table = TextTable([("node", .left), ("value", .left), ("SQNR dB", .right), ("cosine", .right)])
            for e in layerErrors.prefix(layers) {
                table.add([e.node, e.value, e.sqnrDecibels.isFinite ? formatted(e.sqnrDecibels, decimals: 1) : "exact",
                           formatted(e.cosine, decimals: 5)])
            }
            print(table.render())
        }
    }

    func operationCounts(_ graph: Graph) -> (int8: Int, float: Int, conversions: Int) {
        var result = (int8: 0, float: 0, conversions: 0)
        for node in graph.nodes {
            switch node.operation {
            case .quantizeLinear, .dequantizeLinear: result.conversions += 1
            default:
                if graph.valueQuantization[node.outputs[0]] != nil { result.int8 += 1 } else { result.float += 1 }
            }
        }
        return result
    }

    /// A labelled IDX dataset: a directory (its test split) or an images file with its labels beside it.
    func loadEvaluationData(_ path: String) throws -> IDXDataset {
        if FileSystem.isDirectory(path) { return try IDXDataset.load(directory: path, split: .test) }
        let images = try IDXFile.read(path)
        guard let labels = try ModelInput.companionLabels(forImages: path, count: images.count) else {
            throw CommandFailure.data("\(path): no labels file beside it (…-labels-idx1-ubyte)")
        }
        return try IDXDataset(images: images, labels: IDXFile(dataType: .uint8, shape: Shape([labels.count]),
                                                             data: labels.map { UInt8($0) }),
                              imagesName: path)
    }
}
