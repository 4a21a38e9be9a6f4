import ModelKitCore

/// Folds a Mul or Add by a constant that follows a Conv2D or Dense into its weights and bias:
/// y * c -> W' = W * c[o], b' = b * c[o]; y + c -> b' = b + c[o] (a bias is created if absent).
///
/// The constant must be a float initializer that is a scalar or per output channel (every
/// dimension 1 except the last, which is the channel count), and no wider in rank than the
/// output, so the Mul/Add does not broadcast the output to a new shape. The Conv2D/Dense must
/// have no fused activation and its output must be read by the Mul/Add alone and not be a
/// graph output. An Add's own fused activation moves onto the Conv2D/Dense.
public struct FoldConstantAffine: SingleRewritePass {
    public let name = "fold-affine"
    public let summary = "fold Mul/Add by a scalar or per-channel constant into Conv2D/Dense weights and bias"

    public init() {}

    public func rewriteOne(_ graph: Graph) throws -> Graph? {
        let index = GraphIndex(graph)
        var facts: ShapeFacts?
        for (affineIndex, node) in graph.nodes.enumerated() {
            let isMul: Bool
            let activation: FusedActivation
            switch node.operation {
            case .mul: (isMul, activation) = (true, .none)
            case .add(let a): (isMul, activation) = (false, a)
            default: continue
            }
            for (runtime, constant) in [(0, 1), (1, 0)] {
                let valueName = node.inputs[runtime]
                guard let constantTensor = graph.initializers[node.inputs[constant]], graph.initializers[valueName] == nil,
                      let producerIndex = index.exclusiveProducer(of: valueName) else { continue }
                let producer = graph.nodes[producerIndex]
                switch producer.operation {
                case .conv2D(let a) where a.activation == .none: break
                case .dense(let a) where a == .none: break
                default: continue
                }
                if facts == nil { facts = try ShapeFacts(graph) }
                guard let outputShape = facts?.one[valueName]?.shape,
                      let factors = perChannel(constantTensor, outputRank: outputShape.rank,
                                               channels: outputShape.dims.last ?? 0),
                      let folded = fold(graph, producer: producer, factors: factors, isMul: isMul) else { continue }
                var result = graph
                result.nodes[producerIndex].inputs = folded.inputs
                result.nodes[producerIndex].operation = producer.operation.with(activation: activation)!
                result.initializers.merge(folded.initializers) { _, new in new }
                result.absorb(consumer: affineIndex, into: producerIndex)
                return result
            }
        }
        return nil
    }

    /// The constant as one factor per output channel, when it has that form.
    private func perChannel(_ tensor: Tensor, outputRank: Int, channels: Int) -> [Float]? {
        guard let values = tensor.floats, channels > 0, tensor.shape.rank <= outputRank else { return nil }
        let dims = tensor.shape.dims
        if values.count == 1 { return [Float](repeating: values[0], count: channels) }
        guard let last = dims.last, last == channels, dims.dropLast().allSatisfy({ $0 == 1 }) else { return nil }
        return values
    }

    private func fold(_ graph: Graph, producer: Node, factors: [Float], isMul: Bool)
        -> (inputs: [String], initializers: [String: Tensor])? {
        let channels = factors.count
        guard let weight = graph.initializers[producer.inputs[1]], let w = weight.floats,
              weight.shape.dims.first == channels, w.count % channels == 0 else { return nil }
        let biasName = producer.inputs.count > 2 ? producer.inputs[2] : ""
        var bias = [Float](repeating: 0, count: channels)
        if !biasName.isEmpty {
            guard let b = graph.constantFloats(biasName), b.count == channels else { return nil }
            bias = b
        }
        var inputs = producer.inputs
        var initializers: [String: Tensor] = [:]
        var scratch = graph
        if isMul {
            let perChannel = w.count / channels
            var newWeight = w
            for o in 0..<channels {
                for k in 0..<perChannel { newWeight[o * perChannel + k] *= factors[o] }
            }
            let weightName = scratch.freshName("\(producer.inputs[1])/scaled")
            scratch.initializers[weightName] = weight
            initializers[weightName] = Tensor(shape: weight.shape, floats: newWeight)
            inputs[1] = weightName
            guard !biasName.isEmpty else { return (inputs, initializers) }
            bias = zip(bias, factors).map { $0 * $1 }
        } else {
            bias = zip(bias, factors).map { $0 + $1 }
        }
        let newBiasName = scratch.freshName(biasName.isEmpty ? "\(producer.name).bias/folded" : "\(biasName)/folded")
        initializers[newBiasName] = Tensor(shape: [channels], floats: bias)
        if inputs.count > 2 { inputs[2] = newBiasName } else { inputs.append(newBiasName) }
        return (inputs, initializers)
    }
}
