import ModelKitCore

/// [N, d1, d2, ...] -> [N, d1·d2·...]; a reshape, so NHWC order is kept.
public final class Flatten: UnaryLayer {
    public let name: String
    private var savedShape: [Int]?

    public init(name: String) { self.name = name }

    public func outputShape(for inputShape: [Int]) throws -> [Int] { [inputShape.reduce(1, *)] }

    public func forward(_ input: Batch, training: Bool, rng: inout RandomGenerator) throws -> Batch {
        guard !input.shape.isEmpty else { throw TrainingError.shapeMismatch(layer: name, reason: "input has no batch axis") }
        savedShape = training ? input.shape : nil
        return Batch(shape: [input.shape[0], input.shape.dropFirst().reduce(1, *)], values: input.values)
    }

    public func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch? {
        guard needInputGradient else { return nil }
        guard let savedShape else { throw TrainingError.backwardBeforeForward(layer: name) }
        guard savedShape.reduce(1, *) == outputGradient.count else {
            throw TrainingError.shapeMismatch(layer: name, reason: "gradient \(outputGradient.shape) vs input \(savedShape)")
        }
        return Batch(shape: savedShape, values: outputGradient.values)
    }

    public func export() throws -> LayerExport { LayerExport(operation: .flatten(axis: 1)) }
}
