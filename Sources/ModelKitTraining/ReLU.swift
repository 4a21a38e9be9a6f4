import ModelKitCore

/// max(x, 0). The derivative at 0 is taken as 0.
public final class ReLU: UnaryLayer, FusableActivationLayer {
    public let name: String
    private var savedInput: Batch?

    public init(name: String) { self.name = name }

    public var fusedActivation: FusedActivation { .relu }
    public func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }

    public func forward(_ input: Batch, training: Bool, rng: inout RandomGenerator) throws -> Batch {
        let output = Elementwise.map(input) { $0 > 0 ? $0 : 0 }
        // The output carries the sign information, and costs no extra copy.
        savedInput = training ? output : nil
        return output
    }

    public func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch? {
        guard needInputGradient else { return nil }
        return try Elementwise.chain(outputGradient, savedInput, name) { $0 > 0 ? 1 : 0 }
    }

    public func export() throws -> LayerExport { LayerExport(operation: .relu) }
}
