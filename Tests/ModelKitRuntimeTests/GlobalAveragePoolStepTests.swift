import ModelKitCore
@testable import ModelKitRuntime
import Testing

/// The sequential-read float GlobalAveragePool step against the reference kernel: identical
/// results (same Double sums in the same order) on random NHWC shapes, through sessions whose
/// plan picks the step, and the step's profile name.
@Suite("global average pool step")
struct GlobalAveragePoolStepTests {
    @Test(arguments: [[1, 7, 7, 1280], [3, 5, 4, 7], [2, 1, 1, 3], [1, 13, 3, 33]])
    func matchesReferenceExactly(_ shape: [Int]) throws {
        var random = SplitMix64(seed: UInt64(shape.reduce(3, *)))
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: Shape(shape))], outputs: ["y"],
                          nodes: [Node(name: "gap", operation: .globalAveragePool, inputs: ["x"], outputs: ["y"])])
        // Values of mixed magnitude, so a different order of additions would show in the floats.
        let values = random.floats(shape.reduce(1, *)).enumerated().map { $0.element * ($0.offset % 5 == 0 ? 1000 : 1) }
        let input = Tensor(shape: Shape(shape), floats: values)
        let reference = try Session(model: Model(graph: graph), options: SessionOptions(kernels: .reference)).run(input)
        let session = try Session(model: Model(graph: graph))
        #expect(try session.run(input) == reference, "\(shape)")
        #expect(session.profile.map(\.kernel) == ["average pool"])
    }
}
