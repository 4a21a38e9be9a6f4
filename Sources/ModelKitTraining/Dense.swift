import ModelKitCore

/// Fully connected: x [N,K], weight [O,K], bias [O] -> x·Wᵀ + b.
public final class Dense: UnaryLayer {
    public let name: String
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: Parameter
    public let bias: Parameter?
    private var savedInput: Batch?
    /// Set by a forward pass with a fused ReLU: backward masks the gradient with `savedOutput`.
    private var reluFused = false
    private var savedOutput: Batch?
    private var maskScratch: [Float] = []

    public init(name: String, inFeatures: Int, outFeatures: Int, useBias: Bool = true, rng: inout RandomGenerator) throws {
        guard inFeatures >= 1, outFeatures >= 1 else {
            throw TrainingError.invalidConfiguration(layer: name, reason: "feature counts must be at least 1")
        }
        self.name = name
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Parameter(name: "\(name).weight", shape: [outFeatures, inFeatures],
                           value: Initializer.glorotUniform(count: outFeatures * inFeatures, fanIn: inFeatures,
                                                            fanOut: outFeatures, rng: &rng))
        bias = useBias ? Parameter(name: "\(name).bias", shape: [outFeatures],
                                   value: [Float](repeating: 0, count: outFeatures)) : nil
    }

    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape == [inFeatures] else {
            throw TrainingError.shapeMismatch(layer: name, reason: "expected [\(inFeatures)] per sample, got \(inputShape)")
        }
        return [outFeatures]
    }

    public func forward(_ input: Batch, training: Bool, rng: inout RandomGenerator) throws -> Batch {
        try forward(input, training: training, fusedReLU: false)
    }

    /// Forward with max(·, 0) applied in the GEMM epilogue when `fusedReLU` (Network does this when
    /// a ReLU is this layer's only reader); the following `backward` then takes the gradient with
    /// respect to the ReLU output.
    func forward(_ input: Batch, training: Bool, fusedReLU: Bool) throws -> Batch {
        guard input.shape.count == 2, input.shape[1] == inFeatures else {
            throw TrainingError.shapeMismatch(layer: name, reason: "expected [N,\(inFeatures)], got \(input.shape)")
        }
        savedInput = training ? input : nil
        reluFused = training && fusedReLU
        savedOutput = nil
        let n = input.shape[0], k = inFeatures, o = outFeatures
        let output = Batch.uninitialized([n, o]) { out in
            input.values.withUnsafeBufferPointer { x in
                weight.value.withUnsafeBufferPointer { w in
                    withOptionalBuffer(bias?.value) { b in
                        Gemm.multiplyBiasReLU(transA: false, transB: true, m: n, n: o, k: k, a: x.baseAddress!,
                                              lda: k, b: w.baseAddress!, ldb: k, c: out.baseAddress!, ldc: o,
                                              bias: b, relu: fusedReLU)
                    }
                }
            }
        }
        if reluFused { savedOutput = output }
        return output
    }

    public func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch? {
        guard let input = savedInput else { throw TrainingError.backwardBeforeForward(layer: name) }
        let n = input.shape[0], k = inFeatures, o = outFeatures
        try Check.same(outputGradient.shape, [n, o], name, "output gradient")
        var dyValues = outputGradient.values
        if reluFused {
            guard let output = savedOutput else { throw TrainingError.backwardBeforeForward(layer: name) }
            var masked = maskScratch
            maskScratch = []
            let sums = ColumnSums.reluMasked(outputGradient.values, output: output.values, into: &masked, columns: o,
                                             sums: bias != nil)
            if let bias, let sums { bias.gradient = sums }
            dyValues = masked
        } else if let bias {
            bias.gradient = ColumnSums.of(outputGradient.values, columns: o)
        }
        // Hand the mask buffer back for the next step once this pass no longer reads it.
        defer { if reluFused { maskScratch = dyValues } }
        dyValues.withUnsafeBufferPointer { dy in
            input.values.withUnsafeBufferPointer { x in
                weight.gradient.withUnsafeMutableBufferPointer { dw in
                    Gemm.multiply(transA: true, transB: false, m: o, n: k, k: n, a: dy.baseAddress!, lda: o,
                                  b: x.baseAddress!, ldb: k, beta: 0, c: dw.baseAddress!, ldc: k)
                }
            }
        }
        guard needInputGradient else { return nil }
        return Batch.uninitialized([n, k]) { dx in
            dyValues.withUnsafeBufferPointer { dy in
                weight.value.withUnsafeBufferPointer { w in
                    Gemm.multiply(transA: false, transB: false, m: n, n: k, k: o, a: dy.baseAddress!, lda: o,
                                  b: w.baseAddress!, ldb: k, beta: 0, c: dx.baseAddress!, ldc: k)
                }
            }
        }
    }

    public func export() throws -> LayerExport {
        var initializers = [(name: weight.name, tensor: weight.tensor)]
        if let bias { initializers.append((bias.name, bias.tensor)) }
        return LayerExport(operation: .dense(activation: .none), initializers: initializers)
    }
}
