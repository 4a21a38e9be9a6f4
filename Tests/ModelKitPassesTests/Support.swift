import ModelKitCore
import ModelKitPasses
import ModelKitRuntime
import Testing

/// Deterministic pseudo-random floats (xorshift), so failures reproduce.
struct Random {
    var state: UInt64

    init(seed: UInt64) { state = seed | 1 }

    mutating func next() -> Float {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Float(state >> 40) / Float(1 << 24) * 2 - 1
    }

    mutating func floats(_ count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in next() * scale }
    }

    mutating func tensor(_ dims: [Int], scale: Float = 1) -> Tensor {
        Tensor(shape: Shape(dims), floats: floats(dims.reduce(1, *), scale: scale))
    }
}

/// Builds small graphs node by node; every node's output is named after the node.
struct GraphBuilder {
    var graph: Graph
    var random = Random(seed: 42)

    init(input dims: [Int], name: String = "x") {
        graph = Graph(inputs: [ValueInfo(name: name, shape: Shape(dims))], outputs: [], nodes: [])
    }

    @discardableResult
    mutating func constant(_ name: String, _ dims: [Int], scale: Float = 1) -> String {
        graph.initializers[name] = random.tensor(dims, scale: scale)
        return name
    }

    mutating func constant(_ name: String, _ dims: [Int], values: [Float]) -> String {
        graph.initializers[name] = Tensor(shape: Shape(dims), floats: values)
        return name
    }

    @discardableResult
    mutating func node(_ name: String, _ operation: Operation, _ inputs: [String]) -> String {
        graph.nodes.append(Node(name: name, operation: operation, inputs: inputs, outputs: [name]))
        return name
    }

    /// A BatchNormalization with random statistics (positive variance) for `channels`.
    mutating func batchNorm(_ name: String, _ input: String, channels: Int) -> String {
        let scale = constant("\(name).scale", [channels])
        let bias = constant("\(name).bias", [channels])
        let mean = constant("\(name).mean", [channels])
        let variance = constant("\(name).var", [channels], values: random.floats(channels).map { $0 * $0 + 0.5 })
        return node(name, .batchNormalization(epsilon: 1e-3), [input, scale, bias, mean, variance])
    }

    func finish(_ outputs: String...) -> Graph {
        var result = graph
        result.outputs = outputs
        // A must-not-apply test on a broken graph would pass for the wrong reason.
        precondition((try? result.analyze()) != nil, "test graph does not validate")
        return result
    }
}

func opCounts(_ graph: Graph) -> [String: Int] {
    graph.nodes.reduce(into: [:]) { $0[$1.operation.name, default: 0] += 1 }
}

/// Runs both graphs on the same random batch and checks every output agrees within `tolerance`
/// relative to the output's largest magnitude.
func expectSameOutputs(_ original: Graph, _ optimized: Graph, batch: Int = 2, tolerance: Float = 1e-5,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
    var random = Random(seed: 7)
    var feeds: [String: Tensor] = [:]
    for input in original.inputs {
        feeds[input.name] = random.tensor(input.shape.dims.map { $0 == -1 ? batch : $0 }, scale: 2)
    }
    let before = try Session(model: Model(graph: original)).run(feeds)
    let after = try Session(model: Model(graph: optimized)).run(feeds)
    #expect(Set(before.keys) == Set(after.keys), sourceLocation: sourceLocation)
    for (name, expected) in before {
        let actual = try #require(after[name], sourceLocation: sourceLocation)
        #expect(actual.shape == expected.shape, "output \(name)", sourceLocation: sourceLocation)
        let a = actual.floats!, e = expected.floats!
        let magnitude = max(e.map { abs($0) }.max() ?? 0, 1e-6)
        let worst = zip(a, e).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= tolerance * magnitude, "output \(name): max difference \(worst) (magnitude \(magnitude))",
                sourceLocation: sourceLocation)
    }
}

/// Runs one pass, checks outputs are unchanged, and returns the result.
func runPass(_ pass: any GraphPass, _ graph: Graph, sourceLocation: SourceLocation = #_sourceLocation) throws -> PassResult {
    let result = try pass.run(graph)
    _ = try result.graph.analyze()
    try expectSameOutputs(graph, result.graph, sourceLocation: sourceLocation)
    return result
}
