import ModelKitCore

/// Removes nodes whose outputs no node and no graph output reads, then initializers nothing
/// reads. Graph inputs stay: they are the model's interface.
public struct RemoveDeadCode: GraphPass {
    public let name = "dead-code"
    public let summary = "remove nodes and initializers that no graph output depends on"

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var producer: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs { producer[output] = index }
        }
        var live = Set(graph.outputs)
        var keep = [Bool](repeating: false, count: graph.nodes.count)
        var pending = graph.outputs
        while let name = pending.popLast() {
            guard let index = producer[name], !keep[index] else { continue }
            keep[index] = true
            for input in graph.nodes[index].inputs where !input.isEmpty && live.insert(input).inserted {
                pending.append(input)
            }
        }
        var result = graph
        result.nodes = graph.nodes.indices.filter { keep[$0] }.map { graph.nodes[$0] }
        result.initializers = graph.initializers.filter { live.contains($0.key) }
        let rewrites = (graph.nodes.count - result.nodes.count) + (graph.initializers.count - result.initializers.count)
        return PassResult(graph: result, rewrites: rewrites)
    }
}
