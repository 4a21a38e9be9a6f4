import ModelKitCore

/// min(max(x, 0), 6). Derivative 1 strictly inside (0, 6), else 0.
public final class ReLU6: UnaryLayer, FusableActivationLayer {
    public let name: String
    private var savedInput: Batch?

    public init(name: String) { self.name = name }

    public var fusedActivation: FusedActivation { .relu6 }
    public func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }

    public func forward(_ input: Batch, training: Bool, rng: inout RandomGenerator) throws -> Batch {
        savedInput = training ? input : nil
        return Elementwise.map(input) { min(max($0, 0), 6) }
    }

    public func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch? {
        guard needInputGradient else { return nil }
        return try Elementwise.chain(outputGradient, savedInput, name) { $0 > 0 && $0 < 6 ? 1 : 0 }
    }

    public func export() throws -> LayerExport { LayerExport(operation: .clip(min: 0, max: 6)) }
}
