import ModelKitCore

/// Elementwise sum of two same-shaped inputs (residual connections).
public final class Add: Layer {
    public let name: String
    public var parameters: [Parameter] { [] }
    public var inputCount: Int { 2 }

    public init(name: String) { self.name = name }

    public func outputShape(for inputShapes: [[Int]]) throws -> [Int] {
        guard inputShapes.count == 2 else { throw TrainingError.wrongInputCount(layer: name, expected: 2, actual: inputShapes.count) }
        try Check.same(inputShapes[0], inputShapes[1], name, "inputs")
        return inputShapes[0]
    }

    public func forward(_ inputs: [Batch], training: Bool, rng: inout RandomGenerator) throws -> Batch {
        guard inputs.count == 2 else { throw TrainingError.wrongInputCount(layer: name, expected: 2, actual: inputs.count) }
        try Check.same(inputs[0].shape, inputs[1].shape, name, "inputs")
        return Batch.uninitialized(inputs[0].shape) { out in
            inputs[0].values.withUnsafeBufferPointer { a in
                inputs[1].values.withUnsafeBufferPointer { b in
                    for i in 0..<a.count { out[i] = a[i] + b[i] }
                }
            }
        }
    }

    public func backward(_ outputGradient: Batch, needInputGradients: Bool) throws -> [Batch] {
        needInputGradients ? [outputGradient, outputGradient] : []
    }

    public func export() throws -> LayerExport { LayerExport(operation: .add(activation: .none)) }
}
