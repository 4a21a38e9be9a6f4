#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ModelKitCore

/// Which float convolutions take over the residual Add that reads them (the end of a ResNet or
/// MobileNetV2 block): the GEMM's epilogue adds the Add's other input before the Add's activation,
/// which saves the Add's own pass over the tensor and its thread hand-off. A convolution fuses when
/// it has no activation of its own, runs on the packed GEMM (.pointwise or .im2col), and its output
/// is read by that Add alone (not a graph output), whose activation the epilogue's clamp computes
/// (none, ReLU, Clip) and whose other input has the output's shape (no broadcasting) and exists
/// when the convolution runs: computed by an earlier step, a graph input or a constant. The
/// reference kernels never fuse: they are the oracle.
enum FloatResidualFusion {
    struct Pair {
        /// Node index of the Add the convolution takes over.
        let add: Int
        /// The Add's other input.
        let residual: String
        let activation: FusedActivation
        /// Whether the Add's output takes over the residual's memory, the GEMM accumulating onto it:
        /// the residual is an arena value (not a graph input or output) whose every other reader runs
        /// before the convolution, so nothing reads it after the convolution overwrites it. Otherwise
        /// the step copies the residual into the Add's output before the GEMM (`FloatConv2DStep.residual`).
        let inPlace: Bool
    }

    /// False when the environment sets MODELKIT_RESIDUAL_FUSION=0: plans then keep each Add's own
    /// step (for comparisons, like MODELKIT_WINOGRAD=0). Read at each plan.
    static var enabled: Bool {
        guard let setting = getenv("MODELKIT_RESIDUAL_FUSION") else { return true }
        return !(setting[0] == 0x30 && setting[1] == 0)
    }

    /// Per node index, the Add a convolution takes over (nil for the rest). `rootOf` maps a value to
    /// the value owning its memory (aliases: Reshape, Flatten, Dropout).
    static func pairs(graph: Graph, analysis: GraphAnalysis, constantIndex: [String: Int],
                      rootOf: (String) -> String) -> [Pair?] {
        var readers: [String: [Int]] = [:]
        var producer: [String: Int] = [:]
        var position = [Int](repeating: 0, count: graph.nodes.count)
        for (step, index) in analysis.order.enumerated() {
            position[index] = step
            for input in graph.nodes[index].inputs where !input.isEmpty { readers[input, default: []].append(index) }
            for output in graph.nodes[index].outputs { producer[output] = index }
        }
        // Readers per memory owner, for the in-place check.
        var ownerReaders: [String: [Int]] = [:]
        for (value, nodes) in readers where constantIndex[value] == nil { ownerReaders[rootOf(value), default: []] += nodes }
        let graphInputs = Set(graph.inputs.map(\.name))
        let outputOwners = Set(graph.outputs.map(rootOf))
        let values = analysis.values
        var pairs = [Pair?](repeating: nil, count: graph.nodes.count)
        for index in analysis.order {
            let conv = graph.nodes[index]
            guard case .conv2D(let attributes) = conv.operation, attributes.activation == .none, conv.inputs.count > 1,
                  conv.inputs.dropFirst().allSatisfy({ $0.isEmpty || constantIndex[$0] != nil }),
                  let x = values[conv.inputs[0]], let w = values[conv.inputs[1]], let y = values[conv.outputs[0]],
                  x.dtype == .float32, w.dtype == .float32, y.dtype == .float32,
                  !Depthwise.applies(input: x.shape, weight: w.shape, attributes: attributes),
                  let method = FloatConv2DStep.method(input: x.shape, weight: w.shape, attributes: attributes, output: y.shape),
                  method == .pointwise || method == .im2col,
                  let reader = readers[conv.outputs[0]], reader.count == 1, !graph.outputs.contains(conv.outputs[0]),
                  case .add(let activation) = graph.nodes[reader[0]].operation, GemmClamp(activation).fusesActivation
            else { continue }
            let add = graph.nodes[reader[0]]
            guard add.inputs.count == 2, let residual = add.inputs.first(where: { $0 != conv.outputs[0] }), !residual.isEmpty,
                  let r = values[residual], let z = values[add.outputs[0]], r.dtype == .float32, z.dtype == .float32,
                  r.shape == y.shape, z.shape == y.shape,
                  // Empty tensors take no arena space, so two may share an address: nothing to fuse anyway.
                  (y.shape.elementCount ?? 0) > 0
            else { continue }
            let isConstant = constantIndex[residual] != nil, isInput = graphInputs.contains(residual)
            guard isConstant || isInput || producer[residual].map({ position[$0] < position[index] }) == true else { continue }
            let owner = rootOf(residual)
            let inPlace = !isConstant && !graphInputs.contains(owner) && !outputOwners.contains(owner)
                && (ownerReaders[owner] ?? []).allSatisfy { $0 == reader[0] || position[$0] < position[index] }
            pairs[index] = Pair(add: reader[0], residual: residual, activation: activation, inPlace: inPlace)
        }
        return pairs
    }
}
