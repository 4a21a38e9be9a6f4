import ModelKitCore

/// [N,H,W,C] -> [N,1,1,C], the mean over all spatial positions.
public final class GlobalAveragePool: UnaryLayer {
    public let name: String
    private var savedShape: [Int]?

    public init(name: String) { self.name = name }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 3, inputShape[0] >= 1, inputShape[1] >= 1 else {
            throw TrainingError.shapeMismatch(layer: name, reason: "expected [H,W,C] per sample, got \(inputShape)")
        }
        return [1, 1, inputShape[2]]
    }

    public func forward(_ input: Batch, training: Bool, rng: inout RandomGenerator) throws -> Batch {
        try Check.rank(input, 4, name)
        let (n, spatial, c) = (input.shape[0], input.shape[1] * input.shape[2], input.shape[3])
        guard spatial > 0 else { throw TrainingError.shapeMismatch(layer: name, reason: "input \(input.shape) is empty") }
        var output = Batch(zeros: [n, 1, 1, c])
        output.values.withUnsafeMutableBufferPointer { out in
            input.values.withUnsafeBufferPointer { x in
                for s in 0..<n {
                    for p in 0..<spatial {
                        let base = (s * spatial + p) * c
                        for ch in 0..<c { out[s * c + ch] += x[base + ch] }
                    }
                    for ch in 0..<c { out[s * c + ch] /= Float(spatial) }
                }
            }
        }
        savedShape = training ? input.shape : nil
        return output
    }

    public func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch? {
        guard needInputGradient else { return nil }
        guard let shape = savedShape else { throw TrainingError.backwardBeforeForward(layer: name) }
        let (n, spatial, c) = (shape[0], shape[1] * shape[2], shape[3])
        try Check.same(outputGradient.shape, [n, 1, 1, c], name, "output gradient")
        let scale = 1 / Float(spatial)
        return Batch.uninitialized(shape) { d in
            outputGradient.values.withUnsafeBufferPointer { dy in
                for s in 0..<n {
                    for p in 0..<spatial {
                        for ch in 0..<c { d[(s * spatial + p) * c + ch] = dy[s * c + ch] * scale }
                    }
                }
            }
        }
    }

    public func export() throws -> LayerExport { LayerExport(operation: .globalAveragePool) }
}
