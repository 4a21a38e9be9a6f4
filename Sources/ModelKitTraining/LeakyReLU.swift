import ModelKitCore

/// x for x >= 0, alpha·x otherwise.
public final class LeakyReLU: UnaryLayer, FusableActivationLayer {
    public let name: String
    public let alpha: Float
    private var savedInput: Batch?

    public init(name: String, alpha: Float = 0.3) throws {
        guard alpha.isFinite else { throw TrainingError.invalidConfiguration(layer: name, reason: "alpha must be finite") }
        self.name = name
        self.alpha = alpha
    }

    public var fusedActivation: FusedActivation { .leakyRelu(alpha: alpha) }
    public func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }

    public func forward(_ input: Batch, training: Bool, rng: inout RandomGenerator) throws -> Batch {
        savedInput = training ? input : nil
        let alpha = self.alpha
        return Elementwise.map(input) { $0 >= 0 ? $0 : alpha * $0 }
    }

    public func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch? {
        guard needInputGradient else { return nil }
        let alpha = self.alpha
        return try Elementwise.chain(outputGradient, savedInput, name) { $0 >= 0 ? 1 : alpha }
    }

    public func export() throws -> LayerExport { LayerExport(operation: .leakyRelu(alpha: alpha)) }
}
