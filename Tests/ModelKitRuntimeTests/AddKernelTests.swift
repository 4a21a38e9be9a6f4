import CModelKitKernels
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
                let session = try Session(model: Model(graph: graph), options: .splittingEveryLayer(threads: threads))
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

/// The int8 same-shape Add kernel (each C path forced) bit-exact with the reference, on random
/// codes, zero points and scales, including an output scale so small that the output multiplier
/// exceeds 1 (the scalar path).
@Suite("int8 same-shape add")
struct Int8AddKernelTests {
    @Test(arguments: [(Float(0.05), Float(0.03), Float(0.07)), (0.2, 0.2, 0.1), (0.01, 0.04, 0.02), (0.05, 0.05, 1e-8)])
    func matchesReferenceBitExact(scales: (Float, Float, Float)) {
        var random = Int8Random(seed: UInt64(scales.0 * 1000 + scales.2 * 10))
        let count = 1037  // not a multiple of 8: the scalar tail too
        let a = random.codes(count), b = random.codes(count)
        for activation in [FusedActivation.none, .relu] {
            let r = AddRequantization((scales.0, -3), (scales.1, 11), output: (scales.2, 5), activation: activation)
            var expected = [Int8](repeating: 0, count: count)
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    expected.withUnsafeMutableBufferPointer { yp in
                        Int8ReferenceKernels.add(Int8View(ap.baseAddress!, [count], scale: scales.0, zeroPoint: -3),
                                                 Int8View(bp.baseAddress!, [count], scale: scales.1, zeroPoint: 11),
                                                 requantization: r, output: MutableInt8View(yp.baseAddress!, [count], scale: scales.2,
                                                                                            zeroPoint: 5))
                    }
                }
            }
            if scales.2 > 0.001 { #expect(Set(expected).count > 50, "degenerate reference output") }
            for path in [MK_KERNELS_PORTABLE, MK_KERNELS_AVX2] {
                var y = [Int8](repeating: 0x55, count: count)
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        y.withUnsafeMutableBufferPointer { yp in
                            Int8SameShapeAdd.run(Int8View(ap.baseAddress!, [count], scale: scales.0, zeroPoint: -3),
                                                 Int8View(bp.baseAddress!, [count], scale: scales.1, zeroPoint: 11), requantization: r,
                                                 output: MutableInt8View(yp.baseAddress!, [count], scale: scales.2, zeroPoint: 5),
                                                 path: Int32(path.rawValue))
                        }
                    }
                }
                #expect(y == expected, "path \(path.rawValue), \(activation)")
            }
        }
    }

    /// Every pair of codes (65536 values, the full input domain) on each path and split across
    /// pools of 1-3 threads, for scales that give right shifts from 0 to 25 in the three
    /// requantizations (the AVX2 path's one-rounding form covers that whole range).
    @Test(arguments: [(Float(0.05), Float(0.03), Float(0.07)), (1.0, 1e-6, 4.0), (2e-3, 3e-3, 0.2), (0.5, 0.25, 0.01)])
    func everyCodePairMatchesTheReferenceOnEveryPathAndSplit(scales: (Float, Float, Float)) {
        let count = 65536 + 29
        let a = (0..<count).map { Int8(truncatingIfNeeded: $0 >> 8) }
        let b = (0..<count).map { Int8(truncatingIfNeeded: $0 &* 7) }
        let r = AddRequantization((scales.0, 17), (scales.1, -100), output: (scales.2, -9), activation: .relu)
        func add(_ kernel: (Int8View, Int8View, MutableInt8View) -> Void) -> [Int8] {
            var y = [Int8](repeating: 0x55, count: count)
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    y.withUnsafeMutableBufferPointer { yp in
                        kernel(Int8View(ap.baseAddress!, [count], scale: scales.0, zeroPoint: 17),
                               Int8View(bp.baseAddress!, [count], scale: scales.1, zeroPoint: -100),
                               MutableInt8View(yp.baseAddress!, [count], scale: scales.2, zeroPoint: -9))
                    }
                }
            }
            return y
        }
        let expected = add { Int8ReferenceKernels.add($0, $1, requantization: r, output: $2) }
        #expect(Set(expected).count > 5, "degenerate reference output")
        for path in [MK_KERNELS_PORTABLE, MK_KERNELS_AVX2] {
            for threads in 1...3 {
                let pool = WorkerPool(threads: threads, minimumWork: 0)
                let y = add { Int8SameShapeAdd.run($0, $1, requantization: r, output: $2, path: Int32(path.rawValue), pool: pool,
                                                   minimumParallelCount: 1000) }
                #expect(y == expected, "path \(path.rawValue), \(threads) threads")
            }
        }
    }
}
