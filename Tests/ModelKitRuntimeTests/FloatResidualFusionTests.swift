import CModelKitKernels
import ModelKitCore
@testable import ModelKitRuntime
import Testing

/// The residual Add fused into the float convolution before it (`FloatResidualFusion`): the
/// accumulating GEMM entry point and the fused step on every kernel path, and whole sessions in
/// each fusable form, and the forms that must not fuse, against the reference kernels.
@Suite("float residual fusion")
struct FloatResidualFusionTests {
    // MARK: - The accumulating GEMM

    /// C = clamp(A·Bt + C + bias) against plain loops on every path: short row tiles, edge column
    /// panels, several K blocks, and C a column block of a wider matrix (ldc > n, as a column split writes).
    @Test(arguments: [(49, 48, 700), (13, 29, 17), (6, 16, 64), (50, 10, 330), (1, 33, 9)])
    func accumulatingGemmMatchesLoops(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let ldc = n + 3
        var random = SplitMix64(seed: UInt64(m * 10_000 + n * 100 + k))
        let a = random.floats(m * k), b = random.floats(n * k), bias = random.floats(n)
        let residual = random.floats(m * ldc, scale: 4)
        let clamps: [(on: Int32, lo: Float, hi: Float)] = [(0, 0, 0), (1, 0, .infinity), (1, -0.25, 0.75)]
        for clamp in clamps {
            var expected = residual, magnitude = [Float](repeating: 0, count: m * ldc)
            for i in 0..<m {
                for j in 0..<n {
                    var sum = Double(bias[j]) + Double(residual[i * ldc + j])
                    var size = abs(Double(bias[j])) + abs(Double(residual[i * ldc + j]))
                    for p in 0..<k {
                        sum += Double(a[i * k + p]) * Double(b[j * k + p])
                        size += abs(Double(a[i * k + p]) * Double(b[j * k + p]))
                    }
                    expected[i * ldc + j] = clamp.on != 0 ? min(max(Float(sum), clamp.lo), clamp.hi) : Float(sum)
                    magnitude[i * ldc + j] = Float(size)
                }
            }
            for path in KernelPathTests.paths {
                var packed = [Float](repeating: .nan, count: mk_sgemm_packed_b_count(path, n, k))
                mk_sgemm_pack_b(path, n, k, b, k, &packed)
                var c = residual
                mk_sgemm_packed_accumulate_clamp(path, m, n, k, a, k, packed, &c, ldc, bias, clamp.on, clamp.lo, clamp.hi)
                let worst = c.indices.map { abs(c[$0] - expected[$0]) / max(1, magnitude[$0]) }.max() ?? 0
                #expect(worst <= 1e-5, "path \(path) clamp \(clamp): \(worst)")
                // The columns past n are another task's: untouched.
                let outside = (0..<m).flatMap { i in (n..<ldc).map { i * ldc + $0 } }
                #expect(outside.allSatisfy { c[$0].bitPattern == residual[$0].bitPattern }, "path \(path)")
            }
        }
    }

    // MARK: - The fused step on every path

    struct StepCase: Sendable, CustomTestStringConvertible {
        var input: [Int]
        var weight: [Int]
        var padding: Padding
        var method: FloatConv2DStep.Method
        var testDescription: String { "\(input) * \(weight) \(method)" }
    }

    /// Pointwise and im2col, split by rows (many pixels) and by columns (few pixels, many outputs).
    static let stepCases: [StepCase] = [
        StepCase(input: [1, 4, 4, 24], weight: [48, 1, 1, 24], padding: .valid, method: .pointwise),
        StepCase(input: [3, 10, 10, 16], weight: [24, 1, 1, 16], padding: .valid, method: .pointwise),
        StepCase(input: [1, 4, 4, 16], weight: [40, 3, 3, 16], padding: .same, method: .im2col),
        StepCase(input: [2, 9, 9, 8], weight: [12, 3, 3, 8], padding: .same, method: .im2col),
    ]

    /// relu(conv(x) + bias + residual) from the step, with the residual in its own buffer (copied)
    /// and in the output's (in place), at 1 and 2 threads, against the reference conv plus the Add.
    @Test(arguments: stepCases)
    func fusedStepMatchesReference(_ testCase: StepCase) {
        let inputShape = Shape(testCase.input), weightShape = Shape(testCase.weight)
        let attributes = Conv2DAttributes(padding: testCase.padding)
        var random = SplitMix64(seed: UInt64(testCase.input.reduce(0, +) * 7 + testCase.weight[0]))
        let x = random.floats(inputShape.elementCount!), w = random.floats(weightShape.elementCount!)
        let bias = random.floats(testCase.weight[0])
        // Stride 1, 'same' or 1x1: the input's pixels.
        let outputShape = Shape([testCase.input[0], testCase.input[1], testCase.input[2], testCase.weight[0]])
        let residual = random.floats(outputShape.elementCount!, scale: 3)
        let conv = runReference(.conv2D(attributes), [HostTensor(inputShape, x), HostTensor(weightShape, w),
                                                      HostTensor([testCase.weight[0]], bias)], outputShape: outputShape)
        let expected = zip(conv, residual).map { max($0 + $1, 0) }
        #expect(FloatConv2DStep.method(input: inputShape, weight: weightShape, attributes: attributes,
                                       output: outputShape) == testCase.method)
        for path in KernelPathTests.paths {
            for threads in [1, 2] {
                let pool = WorkerPool(threads: threads, minimumWork: 0)
                for inPlace in [false, true] {
                    var y = inPlace ? residual : [Float](repeating: .nan, count: residual.count)
                    var buffers: [PlanBuffer] = []
                    x.withUnsafeBufferPointer { xs in w.withUnsafeBufferPointer { ws in bias.withUnsafeBufferPointer { bs in
                        residual.withUnsafeBufferPointer { rs in y.withUnsafeMutableBufferPointer { ys in
                            let source = inPlace ? UnsafePointer(ys.baseAddress!) : rs.baseAddress!
                            let step = FloatConv2DStep.make(
                                input: TensorView(xs.baseAddress!, inputShape), weight: TensorView(ws.baseAddress!, weightShape),
                                bias: TensorView(bs.baseAddress!, [testCase.weight[0]]), attributes: attributes,
                                output: MutableTensorView(ys.baseAddress!, outputShape), residual: (source, .relu),
                                buffers: &buffers, path: path)!
                            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, step.scratchCount * threads))
                            defer { scratch.deallocate() }
                            step.run(scratch: scratch, scratchStride: step.scratchCount, pool: pool)
                        } }
                    } } }
                    let bad = mismatches(y, expected)
                    #expect(bad.isEmpty, "path \(path), \(threads) threads, in place \(inPlace): \(bad.count) differ")
                }
            }
        }
    }

    // MARK: - Whole sessions

    /// A graph and the kernels its optimized plan must run, in order, at batch 1 and at batch 3.
    struct Form: Sendable, CustomTestStringConvertible {
        var name: String
        var graph: Graph
        var kernels: [String]
        var kernelsAtBatch3: [String]? = nil
        /// Per fused convolution (by name), whether the Add's output takes over the residual's memory.
        var inPlace: [String: Bool] = [:]
        var testDescription: String { name }
    }

    /// A stride-1 'same' convolution; its kernel size comes from its weight's shape.
    static func conv(_ name: String, _ input: String, _ output: String, activation: FusedActivation = .none) -> Node {
        Node(name: name, operation: .conv2D(Conv2DAttributes(padding: .same, activation: activation)),
             inputs: [input, name + ".w", name + ".b"], outputs: [output])
    }

    static func add(_ name: String, _ a: String, _ b: String, activation: FusedActivation = .none) -> Node {
        Node(name: name, operation: .add(activation: activation), inputs: [a, b], outputs: [name])
    }

    /// Random weights for every convolution: `weights[name]` = [O, kH, kW, C].
    static func graph(input channels: Int, outputs: [String], nodes: [Node], weights: [String: [Int]],
                      constants: [String: Tensor] = [:]) -> Graph {
        var random = SplitMix64(seed: UInt64(nodes.count * 131 + weights.count))
        var initializers = constants
        for (name, shape) in weights.sorted(by: { $0.key < $1.key }) {
            initializers[name + ".w"] = Tensor(shape: Shape(shape), floats: random.floats(shape.reduce(1, *), scale: 0.3))
            initializers[name + ".b"] = Tensor(shape: [shape[0]], floats: random.floats(shape[0]))
        }
        return Graph(inputs: [ValueInfo(name: "x", shape: [-1, 6, 7, channels])], outputs: outputs, nodes: nodes,
                     initializers: initializers)
    }

    static let forms: [Form] = {
        var forms: [Form] = []
        // A bottleneck block: the Add's other input from two steps back, the conv output its second input.
        forms.append(Form(name: "residual from earlier, conv output second",
                          graph: graph(input: 8, outputs: ["z"], nodes: [
                              conv("c0", "x", "a", activation: .relu), conv("c1", "a", "b", activation: .relu),
                              conv("c2", "b", "y"), add("z", "a", "y", activation: .relu),
                          ], weights: ["c0": [16, 1, 1, 8], "c1": [16, 3, 3, 16], "c2": [16, 1, 1, 16]]),
                          kernels: ["pointwise gemm", "im2col gemm", "pointwise gemm+add"], inPlace: ["c2": true]))
        // The conv output first, no activation, the sum read by a later conv; the fused conv is 3x3.
        forms.append(Form(name: "conv output first, im2col",
                          graph: graph(input: 8, outputs: ["out"], nodes: [
                              conv("c0", "x", "a", activation: .relu), conv("c1", "a", "b", activation: .relu),
                              conv("c2", "b", "y"), add("z", "y", "a"), conv("c3", "z", "out"),
                          ], weights: ["c0": [16, 1, 1, 8], "c1": [12, 1, 1, 16], "c2": [16, 3, 3, 12],
                                       "c3": [5, 1, 1, 16]]),
                          kernels: ["pointwise gemm", "pointwise gemm", "im2col gemm+add", "pointwise gemm"],
                          inPlace: ["c2": true]))
        // The residual is the graph input: copied, the input stays as fed.
        forms.append(Form(name: "residual is the graph input",
                          graph: graph(input: 16, outputs: ["z"], nodes: [
                              conv("c1", "x", "b", activation: .relu), conv("c2", "b", "y"),
                              add("z", "x", "y", activation: .relu),
                          ], weights: ["c1": [8, 1, 1, 16], "c2": [16, 3, 3, 8]]),
                          kernels: ["pointwise gemm", "im2col gemm+add"], inPlace: ["c2": false]))
        // The residual is read again after the conv (by a second Add): copied, not overwritten.
        forms.append(Form(name: "residual read after the conv",
                          graph: graph(input: 8, outputs: ["out"], nodes: [
                              conv("c0", "x", "a", activation: .relu), conv("c1", "a", "b", activation: .relu),
                              conv("c2", "b", "y"), add("z", "a", "y"), add("out", "z", "a", activation: .relu),
                          ], weights: ["c0": [16, 1, 1, 8], "c1": [16, 1, 1, 16], "c2": [16, 1, 1, 16]]),
                          kernels: ["pointwise gemm", "pointwise gemm", "pointwise gemm+add", "add"], inPlace: ["c2": false]))
        // x + conv(x): the conv reads its residual, so the sum cannot overwrite it.
        forms.append(Form(name: "residual is the conv's input",
                          graph: graph(input: 8, outputs: ["z"], nodes: [
                              conv("c0", "x", "a", activation: .relu), conv("c2", "a", "y"),
                              add("z", "a", "y", activation: .relu),
                          ], weights: ["c0": [16, 1, 1, 8], "c2": [16, 3, 3, 16]]),
                          kernels: ["pointwise gemm", "im2col gemm+add"], inPlace: ["c2": false]))
        // A projection block: both Add inputs are convs read only by it; the later one fuses, the
        // earlier one's output is its residual.
        forms.append(Form(name: "projection shortcut",
                          graph: graph(input: 8, outputs: ["z"], nodes: [
                              conv("cs", "x", "s"), conv("c0", "x", "a", activation: .relu), conv("c2", "a", "y"),
                              add("z", "s", "y", activation: .relu),
                          ], weights: ["cs": [24, 1, 1, 8], "c0": [16, 1, 1, 8], "c2": [24, 1, 1, 16]]),
                          kernels: ["pointwise gemm", "pointwise gemm", "pointwise gemm+add"], inPlace: ["c2": true]))
        // A constant of one image's shape: same shape at batch 1 (fused, copied), broadcast at batch 3 (not fused).
        var random = SplitMix64(seed: 99)
        forms.append(Form(name: "constant residual",
                          graph: graph(input: 8, outputs: ["z"], nodes: [
                              conv("c2", "x", "y"), add("z", "y", "k", activation: .relu),
                          ], weights: ["c2": [16, 1, 1, 8]],
                          constants: ["k": Tensor(shape: [1, 6, 7, 16], floats: random.floats(6 * 7 * 16))]),
                          kernels: ["pointwise gemm+add"], kernelsAtBatch3: ["pointwise gemm", "reference"],
                          inPlace: ["c2": false]))
        // Not fused: the conv output has a second reader.
        forms.append(Form(name: "conv output read twice",
                          graph: graph(input: 8, outputs: ["z", "t"], nodes: [
                              conv("c0", "x", "a", activation: .relu), conv("c2", "a", "y"), add("z", "a", "y"),
                              conv("c3", "y", "t"),
                          ], weights: ["c0": [16, 1, 1, 8], "c2": [16, 1, 1, 16], "c3": [4, 1, 1, 16]]),
                          kernels: ["pointwise gemm", "pointwise gemm", "add", "pointwise gemm"]))
        // Not fused: the Add broadcasts a per-channel vector.
        forms.append(Form(name: "broadcasting add",
                          graph: graph(input: 8, outputs: ["z"], nodes: [
                              conv("c2", "x", "y"), add("z", "y", "v", activation: .relu),
                          ], weights: ["c2": [16, 1, 1, 8]], constants: ["v": Tensor(shape: [16], floats: random.floats(16))]),
                          kernels: ["pointwise gemm", "reference"]))
        // Not fused: the conv has its own activation before the Add.
        forms.append(Form(name: "conv with its own activation",
                          graph: graph(input: 8, outputs: ["z"], nodes: [
                              conv("c0", "x", "a", activation: .relu), conv("c2", "a", "y", activation: .relu),
                              add("z", "a", "y"),
                          ], weights: ["c0": [16, 1, 1, 8], "c2": [16, 1, 1, 16]]),
                          kernels: ["pointwise gemm", "pointwise gemm", "add"]))
        return forms
    }()

    /// The optimized plan runs exactly the expected kernels (a fused Add has no step of its own and
    /// shows as "+add", and the step names both nodes) and equals the reference within 1e-5 at 1-3
    /// threads, batch 1 and 3; the graph input is left as fed.
    @Test(arguments: forms)
    func sessionsMatchTheReference(_ form: Form) throws {
        let model = Model(graph: form.graph)
        for batch in [1, 3] {
            var random = SplitMix64(seed: UInt64(batch * 17 + form.kernels.count))
            let shape = Shape([batch, 6, 7, form.graph.inputs[0].shape[3]])
            let x = Tensor(shape: shape, floats: random.floats(shape.elementCount!))
            let reference = try Session(model: model, options: SessionOptions(kernels: .reference)).run(["x": x])
            for threads in [1, 2, 3] {
                let session = try Session(model: model, options: .splittingEveryLayer(threads: threads))
                try session.prepare(inputShapes: [shape])
                let kernels = batch == 1 ? form.kernels : form.kernelsAtBatch3 ?? form.kernels
                #expect(session.profile.map(\.kernel) == kernels, "batch \(batch), \(threads) threads")
                #expect(session.stepCount == kernels.count)
                for step in session.profile where step.kernel.hasSuffix("+add") { #expect(step.node.contains("+")) }
                let result = try session.run(["x": x])
                for name in form.graph.outputs {
                    let bad = mismatches(result[name]!.floats!, reference[name]!.floats!)
                    #expect(bad.isEmpty, "\(name), batch \(batch), \(threads) threads: \(bad.count) differ")
                }
                // A second run on the same plan: an in-place sum must not feed into the next run.
                let again = try session.run(["x": x])
                for name in form.graph.outputs { #expect(again[name]!.floats! == result[name]!.floats!) }
            }
        }
    }

    /// Which Adds fuse in place (the sum takes over the residual's memory) and which copy.
    @Test(arguments: forms)
    func inPlaceOnlyWhereNothingReadsTheResidualLater(_ form: Form) throws {
        let analysis = try form.graph.analyze(inputShapes: ["x": [1, 6, 7, form.graph.inputs[0].shape[3]]])
        var constantIndex: [String: Int] = [:]
        for (position, name) in form.graph.initializers.keys.sorted().enumerated() { constantIndex[name] = position }
        let pairs = FloatResidualFusion.pairs(graph: form.graph, analysis: analysis, constantIndex: constantIndex,
                                              rootOf: { $0 })
        var inPlace: [String: Bool] = [:]
        for (index, pair) in pairs.enumerated() {
            if let pair { inPlace[form.graph.nodes[index].name] = pair.inPlace }
        }
        #expect(inPlace == form.inPlace)
    }

    /// The reference kernels never fuse: every node keeps its step.
    @Test func referenceSessionsDoNotFuse() throws {
        let form = Self.forms[0]
        let session = try Session(model: Model(graph: form.graph), options: SessionOptions(kernels: .reference))
        #expect(session.stepCount == form.graph.nodes.count)
        #expect(session.profile.allSatisfy { $0.kernel == "reference" })
    }
}
