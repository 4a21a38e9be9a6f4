import ModelKitCore
@testable import ModelKitRuntime
import Testing

/// The same-shape float Add step against the reference broadcast kernel, through sessions on 1 and
/// 2 threads (large enough to be split), and a broadcasting Add that must stay on the reference.
@Suite("same-shape add")
struct AddKernelTests {
    @Test(arguments: [FusedActivation.none, .relu, .relu6, .leakyRelu(alpha: 0.3)])
    func matchesReference(_ activation: FusedActivation) throws {
        for shape in [[1, 3, 5, 7], [2, 56, 56, 24]] {
            var random = SplitMix64(seed: UInt64(shape.reduce(1, *)))
            let count = shape.reduce(1, *)
            let graph = Graph(
                inputs: [ValueInfo(name: "a", shape: Shape(shape)), ValueInfo(name: "b", shape: Shape(shape))], outputs: ["y"],
                nodes: [Node(name: "add", operation: .add(activation: activation), inputs: ["a", "b"], outputs: ["y"])])
            let inputs = ["a": Tensor(shape: Shape(shape), floats: random.floats(count).map { $0 * 8 }),
                          "b": Tensor(shape: Shape(shape), floats: random.floats(count).map { $0 * 8 })]
            let reference = try Session(model: Model(graph: graph), options: SessionOptions(kernels: .reference)).run(inputs)["y"]!
            for threads in [1, 2] {
                let session = try Session(model: Model(graph: graph), options: SessionOptions(threads: threads))
                #expect(try session.run(inputs)["y"]! == reference, "\(shape), \(threads) threads")
            }
        }
    }

    @Test func broadcastingAddIsNotSameShape() {
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [10, 20]
        var y = [Float](repeating: 0, count: 4)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                y.withUnsafeMutableBufferPointer { yp in
                    #expect(SameShapeAdd(TensorView(ap.baseAddress!, [2, 2]), TensorView(bp.baseAddress!, [2]), activation: .none,
                                         output: MutableTensorView(yp.baseAddress!, [2, 2]), threads: 1) == nil)
                }
            }
        }
    }
}
