import Testing
import ModelKitCore

private func relu(_ name: String, _ input: String, _ output: String) -> Node {
    Node(name: name, operation: .relu, inputs: [input], outputs: [output])
}

struct GraphAnalysisTests {
    @Test func ordersNodesAfterTheirProducers() throws {
        // Stored out of order on purpose.
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [1, 4])], outputs: ["c"],
                          nodes: [relu("n2", "b", "c"), relu("n0", "x", "a"), relu("n1", "a", "b")])
        let analysis = try graph.analyze()
        #expect(analysis.order.map { graph.nodes[$0].name } == ["n0", "n1", "n2"])
        #expect(analysis.values["c"]?.shape == [1, 4])
    }

    @Test func dynamicBatchDefaultsToOneAndTakesGivenShapes() throws {
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 3])], outputs: ["y"], nodes: [relu("r", "x", "y")])
        #expect(try graph.analyze().values["y"]?.shape == [1, 3])
        #expect(try graph.analyze(inputShapes: ["x": [7, 3]]).values["y"]?.shape == [7, 3])
    }

    @Test func rejectsACycle() {
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [1])], outputs: ["b"],
                          nodes: [Node(name: "add", operation: .add(activation: .none), inputs: ["x", "b"], outputs: ["a"]),
                                  relu("r", "a", "b")])
        #expect(throws: GraphError.cycle(nodes: ["add", "r"])) { try graph.analyze() }
    }

    @Test func rejectsADanglingInput() {
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [1])], outputs: ["y"], nodes: [relu("r", "z", "y")])
        #expect(throws: GraphError.danglingInput(node: "r", input: "z")) { try graph.analyze() }
    }

    @Test func rejectsADanglingGraphOutput() {
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [1])], outputs: ["nope"], nodes: [relu("r", "x", "y")])
        #expect(throws: GraphError.danglingOutput(name: "nope")) { try graph.analyze() }
    }

    @Test func rejectsAValueDefinedTwice() {
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [1])], outputs: ["y"],
                          nodes: [relu("r1", "x", "y"), relu("r2", "x", "y")])
        #expect(throws: GraphError.duplicateValue(name: "y")) { try graph.analyze() }
    }

    @Test func rejectsWrongArity() {
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [1])], outputs: ["y"],
                          nodes: [Node(name: "a", operation: .add(activation: .none), inputs: ["x"], outputs: ["y"])])
        #expect(throws: GraphError.wrongInputCount(node: "a", op: "Add", expected: 2...2, actual: 1)) { try graph.analyze() }
    }

    @Test func rejectsAnEmptyGraph() {
        #expect(throws: GraphError.emptyGraph) { try Graph(inputs: [], outputs: [], nodes: []).analyze() }
    }

    @Test func rejectsATensorOverTheElementLimit() {
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [1 << 20, 1 << 20])], outputs: ["x"], nodes: [])
        #expect(throws: GraphError.tensorTooLarge(name: "x", shape: [1 << 20, 1 << 20], limit: Limits.default.maxTensorElements)) {
            try graph.analyze()
        }
    }

    @Test func rejectsAShapeWhoseProductOverflows() {
        let huge = 1 << 62
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [huge, huge])], outputs: ["x"], nodes: [])
        #expect(throws: GraphError.invalidShape(name: "x", shape: [huge, huge])) { try graph.analyze() }
    }

    @Test func rejectsAGrowthOverTheLimitInsideTheGraph() {
        // Each Pad is legal on its own; the intermediate they build is not.
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [1, 1])], outputs: ["y"],
                          nodes: [Node(name: "pad", operation: .pad(pads: [0, 0, 1 << 15, 1 << 15], value: 0),
                                       inputs: ["x"], outputs: ["y"])])
        #expect(throws: GraphError.self) { try graph.analyze(limits: Limits(maxTensorElements: 1 << 20)) }
    }

    @Test func messagesNameTheCulprit() {
        #expect(GraphError.danglingInput(node: "conv1", input: "w9").description.contains("'conv1'"))
        #expect(GraphError.danglingInput(node: "conv1", input: "w9").description.contains("'w9'"))
        #expect(GraphError.cycle(nodes: ["a", "b"]).description.contains("cycle"))
    }
}
