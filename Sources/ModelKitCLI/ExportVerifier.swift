import ModelKitCore
import ModelKitRuntime

/// Runs the original and the exported model on the same sample batch and compares every output.
struct ExportVerifier {
    struct Result {
        var passed: Bool
        var samples: Int
        var maxDifference: Float
        var tolerance: Float
        var worstOutput: String
    }

    var reference: Model
    var candidate: Model
    /// When set, outputs may differ by this much absolutely; otherwise by 1e-5 times the
    /// largest magnitude of the reference output.
    var absoluteTolerance: Float?
    var batch = 2
    var seed: UInt64 = 0x6D6F_6465_6C6B_6974

    func run() throws -> Result {
        let referenceInputs = reference.graph.inputs.map { "\($0.name) \($0.shape)" }
        let candidateInputs = candidate.graph.inputs.map { "\($0.name) \($0.shape)" }
        guard referenceInputs == candidateInputs, reference.graph.outputs == candidate.graph.outputs else {
            throw CommandFailure.data("verification failed: the exported model's inputs/outputs "
                + "(\(candidateInputs.joined(separator: ", ")) -> \(candidate.graph.outputs.joined(separator: ", "))) "
                + "differ from the original's")
        }
        let feeds = sampleFeeds()
        let expected = try Session(model: reference).run(feeds)
        let actual = try Session(model: candidate).run(feeds)
        var result = Result(passed: true, samples: feeds.values.first?.shape.dims.first ?? 1, maxDifference: 0,
                            tolerance: absoluteTolerance ?? 0, worstOutput: "")
        for name in reference.graph.outputs {
            let e = expected[name]!, a = actual[name]!
            guard e.shape == a.shape else {
                throw CommandFailure.data("verification failed: output '\(name)' has shape \(a.shape), expected \(e.shape)")
            }
            let magnitude = e.floats!.reduce(Float(0)) { max($0, abs($1)) }
            let tolerance = absoluteTolerance ?? 1e-5 * max(magnitude, 1e-6)
            var worst: Float = 0
            for (x, y) in zip(a.floats!, e.floats!) {
                let difference = abs(x - y)
                worst = difference.isNaN ? .infinity : max(worst, difference)
            }
            if worst > tolerance { result.passed = false }
            if worst >= result.maxDifference || result.worstOutput.isEmpty {
                result.maxDifference = worst
                result.tolerance = tolerance
                result.worstOutput = name
            }
        }
        return result
    }

    /// Batch `batch` (when the batch is dynamic) of values in the model's input range: raw
    /// pixels 0...255 normalised as the model expects, or uniform in [-1, 1] without normalisation.
    private func sampleFeeds() -> [String: Tensor] {
        var state = seed
        func uniform() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24)
        }
        var feeds: [String: Tensor] = [:]
        for input in reference.graph.inputs {
            let dims = input.shape.dims.map { $0 == -1 ? batch : $0 }
            let channels = max(dims.last ?? 1, 1)
            let values = (0..<dims.reduce(1, *)).map { index -> Float in
                if let normalization = reference.metadata.normalization {
                    return normalization.apply((uniform() * 255).rounded(), channel: index % channels)
                }
                return uniform() * 2 - 1
            }
            feeds[input.name] = Tensor(shape: Shape(dims), floats: values)
        }
        return feeds
    }
}
