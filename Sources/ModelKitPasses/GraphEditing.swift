import ModelKitCore

/// Who produces and who reads each value of a graph. Rebuilt after every rewrite: graphs are
/// small and a fresh index cannot go stale.
struct GraphIndex {
    /// Value name -> index of the node that produces it.
    var producer: [String: Int] = [:]
    /// Value name -> (node index, input position) of every read by a node.
    var readers: [String: [(node: Int, position: Int)]] = [:]
    var graphOutputs: Set<String>

    init(_ graph: Graph) {
        graphOutputs = Set(graph.outputs)
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs { producer[output] = index }
            for (position, input) in node.inputs.enumerated() where !input.isEmpty {
                readers[input, default: []].append((index, position))
            }
        }
    }

    func isGraphOutput(_ name: String) -> Bool { graphOutputs.contains(name) }

    /// The one node that reads `name`, when exactly one read exists and `name` is not a graph
    /// output: the only case in which a pass may rewrite the value away.
    func soleReader(of name: String) -> (node: Int, position: Int)? {
        guard !isGraphOutput(name), let reads = readers[name], reads.count == 1 else { return nil }
        return reads[0]
    }

    /// The producer of `name`, when `name` may be rewritten (sole reader, not an output).
    func exclusiveProducer(of name: String) -> Int? {
        guard soleReader(of: name) != nil else { return nil }
        return producer[name]
    }
}

extension Graph {
    /// A value name used nowhere in the graph (inputs, initializers, node outputs, node names).
    func freshName(_ base: String) -> String {
        var used = Set(inputs.map(\.name))
        used.formUnion(initializers.keys)
        for node in nodes {
            used.formUnion(node.outputs)
            used.insert(node.name)
        }
        var candidate = base
        var counter = 1
        while used.contains(candidate) {
            candidate = "\(base)_\(counter)"
            counter += 1
        }
        return candidate
    }

    mutating func replaceReads(of old: String, with new: String) {
        for index in nodes.indices {
            for position in nodes[index].inputs.indices where nodes[index].inputs[position] == old {
                nodes[index].inputs[position] = new
            }
        }
    }

    /// Removes node `index`, whose output equals its first input, keeping every graph output's
    /// name. Returns false (changing nothing) when that is not possible: the output is a graph
    /// output and the input cannot take its name.
    mutating func bypass(nodeAt index: Int, _ graphIndex: GraphIndex) -> Bool {
        let input = nodes[index].inputs[0]
        let output = nodes[index].outputs[0]
        if !graphIndex.isGraphOutput(output) {
            nodes.remove(at: index)
            replaceReads(of: output, with: input)
            return true
        }
        // The output keeps its name: the input's producer takes it over, when nobody else reads the input.
        guard let producer = graphIndex.producer[input], let reader = graphIndex.soleReader(of: input),
              reader.node == index else { return false }
        nodes[producer].outputs[0] = output
        nodes.remove(at: index)
        return true
    }

    /// Merges `consumer` into `producer`: the producer takes the consumer's output name and
    /// the consumer is removed. The caller has checked that the consumer is the producer's
    /// only reader and has already put the consumer's effect into the producer.
    mutating func absorb(consumer: Int, into producer: Int) {
        nodes[producer].outputs[0] = nodes[consumer].outputs[0]
        nodes.remove(at: consumer)
    }

    /// Every value's info for a batch of `batch` (dynamic input dimensions set to it).
    func valueInfos(batch: Int) throws -> [String: ValueInfo] {
        var shapes: [String: Shape] = [:]
        for input in inputs {
            shapes[input.name] = Shape(input.shape.dims.map { $0 == -1 ? batch : $0 })
        }
        return try analyze(inputShapes: shapes).values
    }

    /// Float values of initializer `name`, when it is a float32 initializer.
    func constantFloats(_ name: String) -> [Float]? {
        initializers[name]?.floats
    }
}

/// Shapes of every value at two batch sizes, so a pass can tell a dimension that follows the
/// batch from a fixed one.
struct ShapeFacts {
    var one: [String: ValueInfo]
    var two: [String: ValueInfo]

    init(_ graph: Graph) throws {
        one = try graph.valueInfos(batch: 1)
        two = graph.inputs.contains(where: { $0.shape.dims.contains(-1) }) ? try graph.valueInfos(batch: 2) : one
    }

    func shapes(_ name: String) -> (Shape, Shape)? {
        guard let a = one[name]?.shape, let b = two[name]?.shape else { return nil }
        return (a, b)
    }
}

extension FusedActivation {
    /// The activation a standalone ReLU / Clip / LeakyReLU op computes, if it is one.
    init?(fusing operation: Operation) {
        switch operation {
        case .relu: self = .relu
        case .clip(let lo, let hi): self = .clip(min: lo, max: hi)
        case .leakyRelu(let alpha): self = .leakyRelu(alpha: alpha)
        default: return nil
        }
    }
}

extension Operation {
    /// The same op carrying `activation` (for ops that can carry one).
    func with(activation: FusedActivation) -> Operation? {
        switch self {
        case .conv2D(var attributes):
            attributes.activation = activation
            return .conv2D(attributes)
        case .dense: return .dense(activation: activation)
        case .add: return .add(activation: activation)
        default: return nil
        }
    }

    /// The lowest value this op can output whatever its input, when the op bounds it.
    var outputLowerBound: Float? {
        let activation: FusedActivation
        switch self {
        case .relu: return 0
        case .clip(let lo, _): return lo
        case .conv2D, .dense, .add: activation = fusedActivation ?? .none
        default: return nil
        }
        switch activation {
        case .relu: return 0
        case .clip(let lo, _): return lo
        default: return nil
        }
    }
}
