import ModelKitCore

/// Folds an inference BatchNormalization into the Conv2D or Dense that feeds it:
/// s = scale / sqrt(variance + epsilon), W'[o,...] = W[o,...] * s[o], b' = (b - mean) * s + beta
/// (b = 0 when the op has no bias, so a bias is created).
///
/// Applies only when the Conv2D/Dense has no fused activation, its output is read by the
/// BatchNormalization alone and is not a graph output, and the weight, bias and the four
/// statistics are float initializers.
public struct FoldBatchNormalization: SingleRewritePass {
    public let name = "fold-batchnorm"
    public let summary = "fold BatchNormalization into the preceding Conv2D/Dense weights and bias"

    public init() {}

    public func rewriteOne(_ graph: Graph) throws -> Graph? {
        let index = GraphIndex(graph)
        for (bnIndex, node) in graph.nodes.enumerated() {
            guard case .batchNormalization(let epsilon) = node.operation,
                  let producerIndex = index.exclusiveProducer(of: node.inputs[0]) else { continue }
            let producer = graph.nodes[producerIndex]
            guard isFoldable(producer.operation) else { continue }
            guard let folded = fold(graph, producer: producer, bn: node, epsilon: epsilon) else { continue }
            var result = graph
            result.nodes[producerIndex].inputs = folded.inputs
            result.initializers.merge(folded.initializers) { _, new in new }
            result.absorb(consumer: bnIndex, into: producerIndex)
            return result
        }
        return nil
    }

    private func isFoldable(_ operation: Operation) -> Bool {
        switch operation {
        case .conv2D(let a): return a.activation == .none
        case .dense(let activation): return activation == .none
        default: return false
        }
    }

    private func fold(_ graph: Graph, producer: Node, bn: Node, epsilon: Float)
        -> (inputs: [String], initializers: [String: Tensor])? {
        guard let weight = graph.initializers[producer.inputs[1]], let w = weight.floats,
              let gamma = graph.constantFloats(bn.inputs[1]), let beta = graph.constantFloats(bn.inputs[2]),
              let mean = graph.constantFloats(bn.inputs[3]), let variance = graph.constantFloats(bn.inputs[4]) else {
            return nil
        }
        let channels = weight.shape.dims.first ?? 0
        guard channels > 0, gamma.count == channels, beta.count == channels, mean.count == channels,
              variance.count == channels, w.count % channels == 0 else { return nil }
        let biasName = producer.inputs.count > 2 ? producer.inputs[2] : ""
        var bias = [Float](repeating: 0, count: channels)
        if !biasName.isEmpty {
            guard let b = graph.constantFloats(biasName), b.count == channels else { return nil }
            bias = b
        }
        let perChannel = w.count / channels
        var newWeight = w
        var newBias = bias
        for o in 0..<channels {
            let s = gamma[o] / (variance[o] + epsilon).squareRoot()
            for k in 0..<perChannel { newWeight[o * perChannel + k] *= s }
            newBias[o] = (bias[o] - mean[o]) * s + beta[o]
        }
        let weightName = graph.freshName("\(producer.inputs[1])/bn_folded")
        var scratch = graph
        scratch.initializers[weightName] = weight
        let newBiasName = scratch.freshName(biasName.isEmpty ? "\(producer.name).bias/bn_folded" : "\(biasName)/bn_folded")
        var inputs = producer.inputs
        inputs[1] = weightName
        if inputs.count > 2 { inputs[2] = newBiasName } else { inputs.append(newBiasName) }
        return (inputs, [weightName: Tensor(shape: weight.shape, floats: newWeight),
                         newBiasName: Tensor(shape: [channels], floats: newBias)])
    }
}
