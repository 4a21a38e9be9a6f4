/// The result of validating a graph for concrete input shapes: an execution order and the
/// type and shape of every value.
public struct GraphAnalysis: Sendable {
    /// Node indices in an order where every node runs after the producers of its inputs.
    public var order: [Int]
    /// Every value: graph inputs, initializers and node outputs.
    public var values: [String: ValueInfo]
}

extension Graph {
    /// Checks structure (names, arity, cycles, limits) and infers every shape.
    ///
    /// - Parameter inputShapes: concrete shapes for the graph inputs; inputs not listed use
    ///   their declared shape with dynamic dimensions set to 1.
    public func analyze(inputShapes: [String: Shape] = [:], limits: Limits = .default) throws -> GraphAnalysis {
        guard !outputs.isEmpty else { throw GraphError.emptyGraph }
        guard nodes.count <= limits.maxNodes else {
            throw GraphError.tooManyNodes(count: nodes.count, limit: limits.maxNodes)
        }

        var values: [String: ValueInfo] = [:]
        func checkLimits(_ name: String, _ shape: Shape) throws {
            guard shape.rank <= limits.maxRank else {
                throw GraphError.rankTooLarge(name: name, rank: shape.rank, limit: limits.maxRank)
            }
            guard let count = shape.elementCount else { throw GraphError.invalidShape(name: name, shape: shape) }
            guard count <= limits.maxTensorElements else {
                throw GraphError.tensorTooLarge(name: name, shape: shape, limit: limits.maxTensorElements)
            }
        }
        func define(_ info: ValueInfo) throws {
            guard !info.name.isEmpty, values[info.name] == nil else { throw GraphError.duplicateValue(name: info.name) }
            try checkLimits(info.name, info.shape)
            values[info.name] = info
        }

        for input in inputs {
            var shape = inputShapes[input.name] ?? input.shape
            guard shape.rank <= limits.maxRank else {
                throw GraphError.rankTooLarge(name: input.name, rank: shape.rank, limit: limits.maxRank)
            }
            shape.dims = shape.dims.map { $0 == -1 ? 1 : $0 }
            try define(ValueInfo(name: input.name, dtype: input.dtype, shape: shape, quantization: input.quantization))
        }
        for name in initializers.keys.sorted() {
            let tensor = initializers[name]!
            try define(ValueInfo(name: name, dtype: tensor.dtype, shape: tensor.shape, quantization: tensor.quantization))
        }

        // Who produces what, to find dangling names before ordering.
        var producer: [String: Int] = [:]
        for (index, node) in nodes.enumerated() {
            let arity = node.operation.inputArity
            guard arity.contains(node.inputs.count) else {
                throw GraphError.wrongInputCount(node: node.name, op: node.operation.name, expected: arity,
                                                 actual: node.inputs.count)
            }
            guard node.outputs.count == 1 else {
                throw GraphError.wrongOutputCount(node: node.name, op: node.operation.name, actual: node.outputs.count)
            }
            for output in node.outputs {
                guard !output.isEmpty, values[output] == nil, producer[output] == nil else {
                    throw GraphError.duplicateValue(name: output)
                }
                producer[output] = index
            }
        }
        for node in nodes {
            for (position, input) in node.inputs.enumerated() where !input.isEmpty || position < 2 {
                guard values[input] != nil || producer[input] != nil else {
                    throw GraphError.danglingInput(node: node.name, input: input)
                }
            }
        }
        for output in outputs where values[output] == nil && producer[output] == nil {
            throw GraphError.danglingOutput(name: output)
        }

        // Kahn's algorithm: iterative, so a deep graph cannot exhaust the stack.
        var pending = [Int](repeating: 0, count: nodes.count)
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (index, node) in nodes.enumerated() {
            for input in node.inputs {
                if let source = producer[input] {
                    pending[index] += 1
                    consumers[source].append(index)
                }
            }
        }
        var ready = (0..<nodes.count).filter { pending[$0] == 0 }.reversed() as [Int]
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        while let index = ready.popLast() {
            order.append(index)
            for consumer in consumers[index].reversed() {
                pending[consumer] -= 1
                if pending[consumer] == 0 { ready.append(consumer) }
            }
        }
        guard order.count == nodes.count else {
            let stuck = (0..<nodes.count).filter { pending[$0] > 0 }.map { nodes[$0].name }
            throw GraphError.cycle(nodes: stuck)
        }

        for index in order {
            let node = nodes[index]
            let inputInfos: [ValueInfo?] = node.inputs.map { $0.isEmpty ? nil : values[$0] }
            let info = try ShapeInference.infer(node: node, inputs: inputInfos,
                                                outputQuantization: valueQuantization[node.outputs[0]])
            try checkLimits(info.name, info.shape)
            values[info.name] = info
        }
        return GraphAnalysis(order: order, values: values)
    }
}
