import ModelKitCore

/// Fully connected: x [N,K], weight [O,K], bias [O] -> x·Wᵀ + b.
public final class Dense: UnaryLayer {
    public let name: String
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: Parameter
    public let bias: Parameter?
    private var savedInput: Batch?

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
        guard input.shape.count == 2, input.shape[1] == inFeatures else {
            throw TrainingError.shapeMismatch(layer: name, reason: "expected [N,\(inFeatures)], got \(input.shape)")
        }
        savedInput = training ? input : nil
        let n = input.shape[0], k = inFeatures, o = outFeatures
        return Batch.uninitialized([n, o]) { out in
            if let bias {
                bias.value.withUnsafeBufferPointer { b in
                    for r in 0..<n { (out.baseAddress! + r * o).update(from: b.baseAddress!, count: o) }
                }
            }
            input.values.withUnsafeBufferPointer { x in
                weight.value.withUnsafeBufferPointer { w in
                    Gemm.multiply(transA: false, transB: true, m: n, n: o, k: k, a: x.baseAddress!, lda: k,
                                  b: w.baseAddress!, ldb: k, beta: bias == nil ? 0 : 1, c: out.baseAddress!, ldc: o)
                }
            }
        }
    }

    public func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch? {
        guard let input = savedInput else { throw TrainingError.backwardBeforeForward(layer: name) }
        let n = input.shape[0], k = inFeatures, o = outFeatures
        try Check.same(outputGradient.shape, [n, o], name, "output gradient")
        outputGradient.values.withUnsafeBufferPointer { dy in
            input.values.withUnsafeBufferPointer { x in
                weight.gradient.withUnsafeMutableBufferPointer { dw in
                    Gemm.multiply(transA: true, transB: false, m: o, n: k, k: n, a: dy.baseAddress!, lda: o,
                                  b: x.baseAddress!, ldb: k, beta: 0, c: dw.baseAddress!, ldc: k)
                }
            }
            if let bias { bias.gradient = ColumnSums.of(outputGradient.values, columns: o) }
        }
        guard needInputGradient else { return nil }
        return Batch.uninitialized([n, k]) { dx in
            outputGradient.values.withUnsafeBufferPointer { dy in
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
