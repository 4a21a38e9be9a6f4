import CModelKitKernels
import ModelKitCore

/// Which int8 convolutions take over the max pooling that follows them (`Int8GemmStep.maxPool`):
/// the pooling is the next step and the only reader of the convolution's output (not a graph
/// output), both are int8 with the same quantization on the pooling's two sides, and the
/// convolution runs direct with a pooling window it serves. Exact, since the requantization is
/// monotonic; the pooled-away pixels are not computed and each window is requantized once.
enum Int8MaxPoolFusion {
    /// Per node index, the node index of the pooling a convolution takes over (nil for the rest).
    /// An array, not an `[Int: Int]`: the first Int-keyed dictionary of a process makes the Swift
    /// runtime scan every protocol conformance in the binary for `Int: Hashable` (~0.1 ms cold).
    static func pairs(graph: Graph, analysis: GraphAnalysis, constantIndex: [String: Int]) -> [Int?] {
        var readers: [String: Int] = [:]
        for node in graph.nodes {
            for input in node.inputs where !input.isEmpty { readers[input, default: 0] += 1 }
        }
        let values = analysis.values
        var fused = [Int?](repeating: nil, count: graph.nodes.count)
        for (position, index) in analysis.order.enumerated().dropLast() {
            let (conv, pool) = (graph.nodes[index], graph.nodes[analysis.order[position + 1]])
            guard case .conv2D(let a) = conv.operation, case .maxPool2D(let p) = pool.operation,
                  pool.inputs[0] == conv.outputs[0], readers[conv.outputs[0]] == 1, !graph.outputs.contains(conv.outputs[0]),
                  conv.inputs.count > 1, constantIndex[conv.inputs[1]] != nil,
                  let x = values[conv.inputs[0]], let w = values[conv.inputs[1]], let y = values[conv.outputs[0]],
                  let z = values[pool.outputs[0]], x.dtype == .int8, w.dtype == .int8, y.dtype == .int8, z.dtype == .int8,
                  y.quantization == z.quantization, !Depthwise.applies(input: x.shape, weight: w.shape, attributes: a),
                  let g = Int8GemmStep.geometry(input: x.shape, weight: w.shape, attributes: a, output: y.shape),
                  Int8GemmStep.runsDirect(g), Int8GemmStep.fusedMaxPool(geometry: g, attributes: p, pooledShape: z.shape) != nil
            else { continue }
            fused[index] = analysis.order[position + 1]
        }
        return fused
    }
}
