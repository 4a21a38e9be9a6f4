import ArgumentParser
import Foundation
import ModelKitCore
import ModelKitData
import ModelKitFormat
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
            and int8 accuracy.
            """)

    @Argument(help: "A float .mkm model.")
    var model: String

    @Option(name: .shortAndLong, help: "The int8 model to write (.mkm).")
    var output: String

    @Option(help: "Calibration inputs: an IDX dataset directory (train split), an IDX images file or a .npy array.")
    var calibration: String

    @Option(help: "Calibration samples to use (the first N).")
    var samples = 500

    @Option(help: "Range choice: minmax or percentile.")
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

    @Option(help: "Samples per inference batch.")
    var batch = 100

    @Option(help: "Layers shown in the per-layer error table (all with --json).")
    var layers = 10

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func validate() throws {
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard method == "minmax" || method == "percentile" else { throw ValidationError("--method must be minmax or percentile") }
        guard percentile > 50, percentile <= 100 else { throw ValidationError("--percentile must be in (50, 100]") }
        if let evalLimit, evalLimit < 1 { throw ValidationError("--eval-limit must be at least 1") }
    }

    func run() throws {
        try reportingFailures {
            let loaded = try LoadedModel(path: model)
            guard loaded.model.kind == .model else {
                throw CommandFailure.data("\(model) is a checkpoint; export it to a model first (modelkit export)")
            }
            guard loaded.model.graph.initializers.values.allSatisfy({ $0.dtype == .float32 }),
                  loaded.model.graph.valueQuantization.isEmpty else {
                throw CommandFailure.data("\(model) is already quantized")
            }
            let batches = try CalibrationData.load(path: calibration, samples: samples, batch: batch, model: loaded.model)
            let options = QuantizationOptions(method: method == "percentile" ? .percentile(percentile) : .minMax,
                                              perTensorWeights: perTensor, int8IO: int8IO)
            let result = try PostTrainingQuantization(model: loaded.model, batches: batches, options: options)
            let bytes = try ModelFile.encode(result.model)
            // What was written must load and run.
            let written = try ModelFile.decode(bytes)
            _ = try Session(model: written)
            try FileSystem.writeFileAtomically(output, bytes: bytes)

            let layerErrors = try QuantizationDiagnostics.layerErrors(float: result.floatGraph, quantized: written.graph,
                                                                      batches: Array(batches.prefix(2)))
            var evaluations: (Evaluation, Evaluation)?
            if let eval {
                let dataset: IDXDataset
                if FileSystem.isDirectory(eval) {
                    dataset = try IDXDataset.load(directory: eval, split: .test)
                } else {
                    let images = try IDXFile.read(eval)
                    guard let labels = try ModelInput.companionLabels(forImages: eval, count: images.count) else {
                        throw CommandFailure.data("\(eval): no labels file beside it (…-labels-idx1-ubyte)")
                    }
                    dataset = try IDXDataset(images: images, labels: IDXFile(dataType: .uint8, shape: Shape([labels.count]),
                                                                             data: labels.map { UInt8($0) }),
                                             imagesName: eval)
                }
                evaluations = (try Evaluation.run(model: loaded.model, dataset: dataset, limit: evalLimit, batch: batch, threads: 1),
                               try Evaluation.run(model: written, dataset: dataset, limit: evalLimit, batch: batch, threads: 1))
            }
            let calibrated = batches.reduce(0) { $0 + $1.shape[0] }
            let counts = operationCounts(written.graph)
            let ratio = Double(bytes.count) / Double(max(loaded.info.fileBytes, 1))
            if json {
                var object: [String: Any] = [
                    "input": model, "output": output, "input_bytes": loaded.info.fileBytes, "output_bytes": bytes.count,
                    "size_ratio": ratio, "calibration_samples": calibrated, "method": method,
                    "weights": perTensor ? "per-tensor" : "per-channel", "int8_io": int8IO,
                    "int8_nodes": counts.int8, "float_nodes": counts.float,
                    "layers": layerErrors.map { e -> [String: Any] in
                        ["node": e.node, "value": e.value, "sqnr_db": e.sqnrDecibels.isFinite ? e.sqnrDecibels as Any : NSNull(),
                         "cosine": e.cosine]
                    },
                ]
                if let (fp32, int8) = evaluations {
                    object["accuracy"] = ["samples": fp32.total, "float": fp32.accuracy, "int8": int8.accuracy,
                                          "drop": fp32.accuracy - int8.accuracy]
                }
                print(try jsonText(object))
                return
            }
            print("input:        \(model) (float, \(grouped(loaded.info.fileBytes)) bytes)")
            print("output:       \(output) (int8, \(grouped(bytes.count)) bytes, \(formatted(ratio, decimals: 3))x)")
            print("calibration:  \(calibrated) samples from \(calibration), \(method == "percentile" ? "percentile \(percentile)" : "minmax"), "
                  + "weights \(perTensor ? "per tensor" : "per channel")")
            print("nodes:        \(counts.int8) int8, \(counts.float) float, \(counts.conversions) quantize/dequantize")
            if let (fp32, int8) = evaluations {
                print("accuracy:     float \(formatted(fp32.accuracy, decimals: 4)), int8 \(formatted(int8.accuracy, decimals: 4)) "
                      + "(drop \(formatted((fp32.accuracy - int8.accuracy) * 100, decimals: 2)) points, \(fp32.total) samples)")
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
}
