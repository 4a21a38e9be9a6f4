import ModelKitCore

/// Fuses a standalone ReLU, Clip (ReLU6 included) or LeakyReLU into the Conv2D, Dense or Add
/// that feeds it, when that op has no fused activation yet and its output is read by the
/// activation alone and is not a graph output.
public struct FuseActivation: SingleRewritePass {
    public let name = "fuse-activation"
    public let summary = "fuse ReLU/Clip/LeakyReLU into the preceding Conv2D/Dense/Add"

    public init() {}

    public func rewriteOne(_ graph: Graph) throws -> Graph? {
        let index = GraphIndex(graph)
        for (activationIndex, node) in graph.nodes.enumerated() {
            guard let activation = FusedActivation(fusing: node.operation),
                  let producerIndex = index.exclusiveProducer(of: node.inputs[0]) else { continue }
            let producer = graph.nodes[producerIndex]
            guard producer.operation.fusedActivation == FusedActivation.none,
                  let fused = producer.operation.with(activation: activation) else { continue }
            var result = graph
            result.nodes[producerIndex].operation = fused
            result.absorb(consumer: activationIndex, into: producerIndex)
            return result
        }
        return nil
    }
}
