import ModelKitCore

/// A differentiable layer over float batches. A layer caches what its backward pass needs
/// during a training forward pass; `backward` must follow `forward(training: true)`.
public protocol Layer: AnyObject {
    var name: String { get }
    /// Trainable parameters and non-trainable state, in a stable order.
    var parameters: [Parameter] { get }
    /// Number of inputs the layer takes (Add: 2, others: 1).
    var inputCount: Int { get }
    /// Per-sample output shape (no batch dimension) for per-sample input shapes.
    func outputShape(for inputShapes: [[Int]]) throws -> [Int]
    func forward(_ inputs: [Batch], training: Bool, rng: inout RandomGenerator) throws -> Batch
    /// Writes parameter gradients and returns one gradient per input (an empty array when
    /// `needInputGradients` is false, e.g. for the first layer of a network).
    func backward(_ outputGradient: Batch, needInputGradients: Bool) throws -> [Batch]
    /// The inference op, with the parameters to attach as initializers after the data inputs.
    func export() throws -> LayerExport
}

/// How a layer appears in the inference graph.
public struct LayerExport {
    public var operation: Operation
    /// Extra node inputs (weights, biases, statistics), in operation input order.
    public var initializers: [(name: String, tensor: Tensor)]

    public init(operation: Operation, initializers: [(name: String, tensor: Tensor)] = []) {
        self.operation = operation
        self.initializers = initializers
    }
}

/// Activations that can fold into a preceding Conv2D or Dense when exporting.
public protocol FusableActivationLayer: Layer {
    var fusedActivation: FusedActivation { get }
}

/// Single-input layers implement these; the array forms come for free.
public protocol UnaryLayer: Layer {
    func forward(_ input: Batch, training: Bool, rng: inout RandomGenerator) throws -> Batch
    func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch?
    func outputShape(for inputShape: [Int]) throws -> [Int]
}

extension UnaryLayer {
    public var inputCount: Int { 1 }

    public func outputShape(for inputShapes: [[Int]]) throws -> [Int] {
        guard inputShapes.count == 1 else {
            throw TrainingError.wrongInputCount(layer: name, expected: 1, actual: inputShapes.count)
        }
        return try outputShape(for: inputShapes[0])
    }

    public func forward(_ inputs: [Batch], training: Bool, rng: inout RandomGenerator) throws -> Batch {
        guard inputs.count == 1 else { throw TrainingError.wrongInputCount(layer: name, expected: 1, actual: inputs.count) }
        return try forward(inputs[0], training: training, rng: &rng)
    }

    public func backward(_ outputGradient: Batch, needInputGradients: Bool) throws -> [Batch] {
        let gradient = try backward(outputGradient, needInputGradient: needInputGradients)
        return gradient.map { [$0] } ?? []
    }

    /// Forward without randomness (every layer but Dropout ignores the generator).
    public func forward(_ input: Batch, training: Bool) throws -> Batch {
        var rng = RandomGenerator(seed: 0)
        return try forward(input, training: training, rng: &rng)
    }

    public var parameters: [Parameter] { [] }
}

extension Parameter {
    var tensor: Tensor { Tensor(shape: Shape(shape), floats: value) }
}

/// Shared checks.
enum Check {
    static func rank(_ batch: Batch, _ rank: Int, _ layer: String) throws {
        guard batch.shape.count == rank else {
            throw TrainingError.shapeMismatch(layer: layer, reason: "expected rank \(rank) input, got \(batch.shape)")
        }
    }

    static func same(_ a: [Int], _ b: [Int], _ layer: String, _ what: String) throws {
        guard a == b else { throw TrainingError.shapeMismatch(layer: layer, reason: "\(what): \(a) vs \(b)") }
    }
}
