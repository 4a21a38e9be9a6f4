import ModelKitCore
import ModelKitRuntime

/// How much one int8 layer costs: the model output's SQNR against float when only that layer
/// goes back to float (the rest as quantized). The larger the gain over the all-int8 model, the
/// more of the output error that layer causes.
public struct LayerSensitivity: Sendable, Hashable {
    public var node: String
    /// Output SQNR (dB) with this layer float.
    public var outputSQNRDecibels: Double
}

/// Keeps the most sensitive layers float until the accuracy drop is within a bound.
///
/// Sensitivity is measured, not read from the per-layer table: each int8 layer is returned to float
/// alone and the model output compared with the float model's on calibration batches. The per-layer
/// SQNR of an activation includes every error upstream of it, so it blames late layers for damage
/// done early; un-quantizing one layer at a time isolates each layer's own share, and costs only one
/// quantizer run and a few batches per layer (no labels needed). The ranking is made once; each step
/// then costs one evaluation.
public enum AccuracyGuard {
    public struct Outcome: Sendable {
        public var quantization: PostTrainingQuantization
        /// The layers kept float, most sensitive first.
        public var floatLayers: [String]
        /// The accuracy (as `evaluate` measures it) of the returned model.
        public var accuracy: Double
        /// The sensitivity ranking, most sensitive first (empty when the first model was good enough).
        public var ranking: [LayerSensitivity]
    }

    /// Starting from `quantization`, while `floatAccuracy − evaluate(model) > maxDrop` (same units
    /// as `evaluate`, e.g. a fraction), returns the next most sensitive int8 layer to float.
    public static func run(_ quantization: PostTrainingQuantization, floatAccuracy: Double, maxDrop: Double,
                           sensitivityBatches: [Tensor], evaluate: (Model) throws -> Double) throws -> Outcome {
        var current = quantization
        var accuracy = try evaluate(current.model)
        var kept: [String] = []
        var ranking: [LayerSensitivity] = []
        // A hair of slack so that a drop equal to the bound (in decimal) is not rejected by rounding.
        while floatAccuracy - accuracy > maxDrop + 1e-12 {
            if ranking.isEmpty {
                ranking = try sensitivities(quantization, batches: sensitivityBatches)
                if ranking.isEmpty { break }
            }
            guard let next = ranking.first(where: { !kept.contains($0.node) }) else { break }
            kept.append(next.node)
            current = try quantization.keepingFloat(Set(kept).union(quantization.options.floatNodes))
            accuracy = try evaluate(current.model)
        }
        return Outcome(quantization: current, floatLayers: kept, accuracy: accuracy, ranking: ranking)
    }

    /// Every int8 layer of `quantization.model`, most sensitive first (ties by name).
    public static func sensitivities(_ quantization: PostTrainingQuantization, batches: [Tensor]) throws -> [LayerSensitivity] {
        guard !batches.isEmpty else { throw QuantizationError.noCalibrationData }
        let reference = try outputs(Model(graph: quantization.floatGraph), batches)
        var result: [LayerSensitivity] = []
        for layer in quantization.int8Layers {
            let candidate = try quantization.keepingFloat(quantization.options.floatNodes.union([layer]))
            let sqnr = signalToNoise(reference, try outputs(candidate.model, batches))
            result.append(LayerSensitivity(node: layer, outputSQNRDecibels: sqnr))
        }
        return result.sorted {
            $0.outputSQNRDecibels != $1.outputSQNRDecibels ? $0.outputSQNRDecibels > $1.outputSQNRDecibels : $0.node < $1.node
        }
    }

    /// All outputs of `model` over `batches`, concatenated as floats (int8 outputs dequantized).
    static func outputs(_ model: Model, _ batches: [Tensor]) throws -> [Float] {
        let session: Session
        do {
            session = try Session(model: model)
        } catch {
            throw QuantizationError.invalidGraph(reason: "\(error)")
        }
        let input = model.graph.inputs[0]
        var values: [Float] = []
        for batch in batches {
            let feed = input.dtype == .int8 ? QuantizationDiagnostics.quantize(batch, input.quantization!) : batch
            let results = try session.run([input.name: feed])
            for name in model.graph.outputs {
                guard let tensor = results[name] else { continue }
                if let floats = tensor.floats {
                    values += floats
                } else if case .int8(let codes) = tensor.storage, let q = tensor.quantization {
                    values += codes.map { q.scales[0] * Float(Int32($0) - q.zeroPoints[0]) }
                }
            }
        }
        return values
    }

    static func signalToNoise(_ reference: [Float], _ actual: [Float]) -> Double {
        var signal = 0.0, noise = 0.0
        for (x, y) in zip(reference, actual) {
            signal += Double(x) * Double(x)
            noise += Double(x - y) * Double(x - y)
        }
        guard noise > 0 else { return .infinity }
        return 10 * QuantizationDiagnostics.log10Approximation(max(signal, .leastNormalMagnitude) / noise)
    }
}
