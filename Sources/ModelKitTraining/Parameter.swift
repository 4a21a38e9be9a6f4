/// A named parameter with its gradient. Layers own their parameters; optimizers update
/// `value` in place from `gradient`. Non-trainable state (batch-norm running statistics) is a
/// Parameter with `isTrainable == false`: saved and exported, never touched by optimizers.
public final class Parameter {
    /// Unique within a network, e.g. "conv1.weight".
    public let name: String
    /// Layout as the graph IR stores it (conv [O,kH,kW,C/groups], dense [O,K], vectors [C]).
    public let shape: [Int]
    public var value: [Float]
    /// Written (not accumulated) by each backward pass.
    public var gradient: [Float]
    public let isTrainable: Bool

    public init(name: String, shape: [Int], value: [Float], isTrainable: Bool = true) {
        precondition(shape.reduce(1, *) == value.count, "\(name): shape \(shape) does not match \(value.count) values")
        self.name = name
        self.shape = shape
        self.value = value
        self.gradient = [Float](repeating: 0, count: value.count)
        self.isTrainable = isTrainable
    }

    public var count: Int { value.count }

    public func zeroGradient() {
        for index in gradient.indices { gradient[index] = 0 }
    }
}
