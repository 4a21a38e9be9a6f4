import ModelKitCore

/// Removes ops that do not change their input:
/// - Dropout (an identity at inference);
/// - a Reshape or Flatten whose output shape equals its input shape (at batch 1 and 2);
/// - a Transpose with the identity permutation, and a Transpose pair that composes to the
///   identity (a pair that does not becomes one Transpose);
/// - a chain Reshape/Flatten -> Reshape/Flatten, which becomes one Reshape.
///
/// A removed op whose output is a graph output hands that name to the producer of its input,
/// and only when nothing else reads that input; otherwise the op stays.
public struct RemoveIdentities: SingleRewritePass {
    public let name = "remove-identities"
    public let summary = "remove Dropout, no-op Reshape/Transpose, inverse Transpose pairs; merge Reshape chains"

    public init() {}

    public func rewriteOne(_ graph: Graph) throws -> Graph? {
        let index = GraphIndex(graph)
        let facts = try ShapeFacts(graph)
        for (nodeIndex, node) in graph.nodes.enumerated() {
            var result = graph
            switch node.operation {
            case .dropout:
                if result.bypass(nodeAt: nodeIndex, index) { return result }

            case .reshape, .flatten:
                if let (inOne, inTwo) = facts.shapes(node.inputs[0]), let (outOne, outTwo) = facts.shapes(node.outputs[0]),
                   inOne == outOne, inTwo == outTwo, result.bypass(nodeAt: nodeIndex, index) {
                    return result
                }
                // Reshape-like -> this reshape-like: read the first one's input directly.
                if let first = index.exclusiveProducer(of: node.inputs[0]), isReshapeLike(graph.nodes[first].operation),
                   let target = reshapeTarget(facts, output: node.outputs[0]) {
                    result.nodes[nodeIndex].operation = .reshape(shape: target)
                    result.nodes[nodeIndex].inputs[0] = graph.nodes[first].inputs[0]
                    result.nodes.remove(at: first)
                    return result
                }

            case .transpose(let permutation):
                if permutation == Array(permutation.indices), result.bypass(nodeAt: nodeIndex, index) { return result }
                if let first = index.exclusiveProducer(of: node.inputs[0]),
                   case .transpose(let inner) = graph.nodes[first].operation, inner.count == permutation.count {
                    // y = transpose(transpose(x, inner), outer): y axis i is x axis inner[outer[i]].
                    let composed = permutation.map { inner[$0] }
                    result.nodes[nodeIndex].inputs[0] = graph.nodes[first].inputs[0]
                    result.nodes[nodeIndex].operation = .transpose(permutation: composed)
                    result.nodes.remove(at: first)
                    if composed == Array(composed.indices) {
                        let reindexed = GraphIndex(result)
                        let position = nodeIndex > first ? nodeIndex - 1 : nodeIndex
                        _ = result.bypass(nodeAt: position, reindexed)  // stays a no-op Transpose if it cannot go
                    }
                    return result
                }

            default:
                break
            }
        }
        return nil
    }

    private func isReshapeLike(_ operation: Operation) -> Bool {
        switch operation {
        case .reshape, .flatten: return true
        default: return false
        }
    }

    /// A Reshape target giving `output`'s shape from any input of the same element count: fixed
    /// dimensions as numbers, the one dimension that follows the batch (if any) as -1.
    private func reshapeTarget(_ facts: ShapeFacts, output: String) -> [Int]? {
        guard let (one, two) = facts.shapes(output) else { return nil }
        var target = one.dims
        let varying = one.dims.indices.filter { one[$0] != two[$0] }
        guard varying.count <= 1 else { return nil }
        if let axis = varying.first { target[axis] = -1 }
        return target
    }
}
