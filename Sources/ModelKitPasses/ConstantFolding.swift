import ModelKitCore
import ModelKitRuntime

/// Evaluates every node whose inputs are all float initializers with the reference kernels and
/// replaces it by an initializer holding its output (under the same value name). A node whose
/// output is a graph output is kept, as is one whose result would exceed `maxElements`.
public struct ConstantFolding: GraphPass {
    public let name = "constant-folding"
    public let summary = "evaluate nodes whose inputs are all constants into new constants"
    public var maxElements: Int

    public init(maxElements: Int = 1 << 24) {
        self.maxElements = maxElements
    }

    public func run(_ graph: Graph) throws -> PassResult {
        var current = graph
        var rewrites = 0
        var index = 0
        while index < current.nodes.count {
            let node = current.nodes[index]
            guard let value = try evaluate(node, in: current) else {
                index += 1
                continue
            }
            current.nodes.remove(at: index)
            current.initializers[node.outputs[0]] = value
            rewrites += 1
        }
        return PassResult(graph: current, rewrites: rewrites)
    }

    private func evaluate(_ node: Node, in graph: Graph) throws -> Tensor? {
        guard !graph.outputs.contains(node.outputs[0]) else { return nil }
        let present = node.inputs.filter { !$0.isEmpty }
        guard !present.isEmpty, present.allSatisfy({ graph.initializers[$0]?.floats != nil }) else { return nil }
        let infos: [ValueInfo?] = node.inputs.map { name in
            guard let tensor = graph.initializers[name] else { return nil }
            return ValueInfo(name: name, dtype: tensor.dtype, shape: tensor.shape)
        }
        let shape: Shape
        do {
            shape = try ShapeInference.infer(node: node, inputs: infos).shape
        } catch {
            return nil  // Leave an invalid node for validation to report where it belongs.
        }
        guard let count = shape.elementCount, count <= maxElements else { return nil }
        let arrays: [[Float]?] = node.inputs.map { graph.initializers[$0]?.floats }
        var output = [Float](repeating: 0, count: max(count, 1))
        withViews(arrays, infos, index: 0, views: []) { views in
            output.withUnsafeMutableBufferPointer { buffer in
                ReferenceKernels.run(node.operation, inputs: views, output: MutableTensorView(buffer.baseAddress!, shape))
            }
        }
        if count == 0 { output = [] }
        return Tensor(shape: shape, floats: output)
    }

    /// Keeps every input array pinned while the kernel reads it.
    private func withViews(_ arrays: [[Float]?], _ infos: [ValueInfo?], index: Int, views: [TensorView?],
                           _ body: ([TensorView?]) -> Void) {
        guard index < arrays.count else { return body(views) }
        guard let array = arrays[index], let info = infos[index] else {
            return withViews(arrays, infos, index: index + 1, views: views + [nil], body)
        }
        array.withUnsafeBufferPointer { buffer in
            let pointer = buffer.baseAddress ?? UnsafePointer(bitPattern: MemoryLayout<Float>.alignment)!
            withViews(arrays, infos, index: index + 1, views: views + [TensorView(pointer, info.shape)], body)
        }
    }
}
