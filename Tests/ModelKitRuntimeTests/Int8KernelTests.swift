import ModelKitCore
@testable import ModelKitRuntime
import Testing

/// Deterministic pseudo-random numbers (xorshift) for the int8 tests.
struct Int8Random {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    mutating func float(_ scale: Float = 1) -> Float { (Float(next() >> 40) / Float(1 << 24) * 2 - 1) * scale }
    mutating func floats(_ count: Int, scale: Float = 1) -> [Float] { (0..<count).map { _ in float(scale) } }
    mutating func codes(_ count: Int, bound: Int = 127) -> [Int8] {
        (0..<count).map { _ in Int8(Int(next() % UInt64(2 * bound + 1)) - bound) }
    }
}

/// Builds int8 graphs: a float input quantized, int8 ops, int8 (and dequantized float) outputs.
struct Int8GraphBuilder {
    var graph: Graph
    var random: Int8Random
    var current: String

    init(input dims: [Int], scale: Float, zeroPoint: Int32, seed: UInt64 = 7) {
        graph = Graph(inputs: [ValueInfo(name: "x", shape: Shape(dims))], outputs: [], nodes: [])
        random = Int8Random(seed: seed)
        current = "x.q"
        graph.nodes.append(Node(name: "quantize", operation: .quantizeLinear, inputs: ["x"], outputs: ["x.q"]))
        graph.valueQuantization["x.q"] = QuantizationParameters(scale: scale, zeroPoint: zeroPoint)
    }

    /// Adds an int8 node reading `inputs` (default: the current value) with int8 weights/bias made here.
    mutating func add(_ name: String, _ operation: Operation, weight: [Int]? = nil, bias: Bool = true,
                      extraInputs: [String] = [], output: QuantizationParameters? = nil) {
        var inputs = [current] + extraInputs
        if let weight {
            let count = weight.reduce(1, *)
            let scales = (0..<weight[0]).map { _ in 0.002 + abs(random.float(0.01)) }
            graph.initializers[name + ".w"] = Tensor(shape: Shape(weight), storage: .int8(random.codes(count)),
                                                    quantization: QuantizationParameters(scales: scales,
                                                                                         zeroPoints: [Int32](repeating: 0, count: weight[0]), axis: 0))
            inputs.append(name + ".w")
            if bias {
                graph.initializers[name + ".b"] = Tensor(shape: Shape([weight[0]]),
                                                        storage: .int32((0..<weight[0]).map { _ in Int32(random.next() % 2001) - 1000 }))
                inputs.append(name + ".b")
            }
        }
        graph.nodes.append(Node(name: name, operation: operation, inputs: inputs, outputs: [name]))
        graph.valueQuantization[name] = output ?? graph.valueQuantization[current]
        current = name
    }
}

func runInt8(_ graph: Graph, input: [Float], shape: [Int], kernels: KernelPreference) throws -> [String: Tensor] {
    let session = try Session(model: Model(graph: graph), options: SessionOptions(kernels: kernels))
    return try session.run(["x": Tensor(shape: Shape(shape), floats: input)])
}

@Suite("int8 kernels")
struct Int8KernelTests {
    @Test func quantizedMultiplierMatchesRealRounding() {
        var random = Int8Random(seed: 3)
        for _ in 0..<2000 {
            let real = Double(random.next() % 1_000_000 + 1) / 1_000_000 * (random.next() % 2 == 0 ? 1 : 1e-3)
            let x = Int32(truncatingIfNeeded: Int64(random.next() % 2_000_001) - 1_000_000)
            let m = QuantizedMultiplier(real)
            let exact = (Double(x) * real).rounded()
            #expect(abs(Double(m.apply(x)) - exact) <= 1, "x \(x) × \(real)")
        }
        #expect(QuantizedMultiplier(0.5).apply(3) == 2)   // 1.5 rounds up
        // gemmlowp's doubling high multiply rounds a negative tie toward zero (as TFLite does).
        #expect(QuantizedMultiplier(0.5).apply(-3) == -1)
        #expect(QuantizedMultiplier(0.25).apply(-7) == -2)  // -1.75
        #expect(QuantizedMultiplier(0.25).apply(100) == 25)
    }

    @Test func fusedActivationsBecomeClamps() {
        #expect(Requantization.clamp(.relu, scale: 0.1, zeroPoint: -20) == (-20, 127))
        #expect(Requantization.clamp(.relu6, scale: 0.1, zeroPoint: -128) == (-128, -68))
        #expect(Requantization.clamp(.none, scale: 0.1, zeroPoint: 3) == (-128, 127))
    }

    /// Hand-computed: 2x2 input codes 1..4 (zero point 1, scale 0.5), one 1x1 filter of weight 2
    /// (scale 0.25), bias 4 (scale 0.125), output scale 0.25 zero point 0:
    /// real = 0.5·(q−1)·0.5 + 0.5 → (q−1)/4 + 0.5 → codes (q−1) + 2.
    @Test func conv1x1ByHand() throws {
        var graph = Graph(inputs: [ValueInfo(name: "x", dtype: .int8, shape: Shape([1, 2, 2, 1]),
                                             quantization: QuantizationParameters(scale: 0.5, zeroPoint: 1))],
                          outputs: ["y"], nodes: [])
        graph.initializers["w"] = Tensor(shape: Shape([1, 1, 1, 1]), storage: .int8([2]),
                                         quantization: QuantizationParameters(scales: [0.25], zeroPoints: [0], axis: 0))
        graph.initializers["b"] = Tensor(shape: Shape([1]), storage: .int32([4]))
        graph.nodes = [Node(name: "conv", operation: .conv2D(Conv2DAttributes()), inputs: ["x", "w", "b"], outputs: ["y"])]
        graph.valueQuantization["y"] = QuantizationParameters(scale: 0.25, zeroPoint: 0)
        for kernels in [KernelPreference.reference, .optimized] {
            let session = try Session(model: Model(graph: graph), options: SessionOptions(kernels: kernels))
            let y = try session.run(["x": Tensor(shape: Shape([1, 2, 2, 1]), storage: .int8([1, 2, 3, 4]))])["y"]!
            #expect(y.storage == .int8([2, 3, 4, 5]))
            #expect(y.quantization == QuantizationParameters(scale: 0.25, zeroPoint: 0))
        }
    }

    /// int8 Conv2D → MaxPool → AvgPool → Add (residual) → GAP → Flatten → Dense: optimized and
    /// reference sessions agree bit for bit, on several shapes.
    @Test(arguments: [
        ([2, 12, 10, 3], Conv2DAttributes(padding: .same, activation: .relu), 8),
        ([1, 9, 9, 16], Conv2DAttributes(strides: (2, 2), padding: .same, activation: .relu6), 5),
        ([3, 7, 8, 4], Conv2DAttributes(dilations: (2, 1), padding: .explicit(top: 1, left: 2, bottom: 0, right: 1)), 6),
        ([2, 6, 6, 20], Conv2DAttributes(padding: .valid), 33),
    ])
    func optimizedMatchesReferenceBitExact(input: [Int], conv: Conv2DAttributes, outChannels: Int) throws {
        var b = Int8GraphBuilder(input: input, scale: 0.02, zeroPoint: -5)
        let convOut = QuantizationParameters(scale: 0.05, zeroPoint: conv.activation == .none ? 3 : -128)
        b.add("conv", .conv2D(conv), weight: [outChannels, 3, 3, input[3]], output: convOut)
        let pointwiseOut = QuantizationParameters(scale: 0.04, zeroPoint: 10)
        b.add("pointwise", .conv2D(Conv2DAttributes()), weight: [outChannels, 1, 1, outChannels], output: pointwiseOut)
        let beforeAdd = b.current
        b.add("max", .maxPool2D(Pool2DAttributes(kernel: (2, 2), strides: (1, 1), padding: .same)))
        b.add("avg", .averagePool2D(Pool2DAttributes(kernel: (3, 3), strides: (1, 1), padding: .same, countIncludePad: true)))
        b.add("sum", .add(activation: .relu), extraInputs: [beforeAdd], output: QuantizationParameters(scale: 0.06, zeroPoint: -100))
        b.add("gap", .globalAveragePool)
        b.add("flat", .flatten(axis: 1))
        b.add("dense", .dense(activation: .none), weight: [7, outChannels], output: QuantizationParameters(scale: 0.03, zeroPoint: 0))
        b.graph.outputs = ["conv", "pointwise", "sum", "dense"]
        var random = Int8Random(seed: 11)
        let x = random.floats(input.reduce(1, *), scale: 3)
        let reference = try runInt8(b.graph, input: x, shape: input, kernels: .reference)
        let optimized = try runInt8(b.graph, input: x, shape: input, kernels: .optimized)
        for name in b.graph.outputs {
            #expect(optimized[name]!.storage == reference[name]!.storage, "\(name)")
            #expect(reference[name]!.dtype == .int8)
        }
        // The codes are not degenerate (a test on all-zero outputs could not fail).
        if case .int8(let codes) = reference["conv"]!.storage { #expect(Set(codes).count > 10) }
    }

    /// The int8 ops approximate their float counterparts within a couple of quantization steps.
    @Test func int8ConvolutionTracksFloat() throws {
        var random = Int8Random(seed: 5)
        let shape = [1, 8, 8, 3]
        let x = random.floats(shape.reduce(1, *), scale: 1)
        let weights = random.floats(4 * 3 * 3 * 3, scale: 0.5)
        let bias = random.floats(4, scale: 0.2)
        let attributes = Conv2DAttributes(padding: .same)
        // Float reference.
        let floatY = runReference(.conv2D(attributes), [HostTensor(Shape(shape), x), HostTensor([4, 3, 3, 3], weights),
                                                        HostTensor([4], bias)], outputShape: [1, 8, 8, 4])
        // Same in int8: input scale 1/127 (zero point 0), weights per channel, bias at input×weight scale.
        let inputScale: Float = 1.0 / 127
        let weightScales = (0..<4).map { o in weights[(o * 27)..<((o + 1) * 27)].map(abs).max()! / 127 }
        let codes = weights.indices.map { Int8((weights[$0] / weightScales[$0 / 27]).rounded()) }
        let biasCodes = (0..<4).map { Int32((bias[$0] / (inputScale * weightScales[$0])).rounded()) }
        let outputScale = (floatY.map(abs).max()! * 2) / 255
        var graph = Graph(inputs: [ValueInfo(name: "x", shape: Shape(shape))], outputs: ["y"], nodes: [
            Node(name: "q", operation: .quantizeLinear, inputs: ["x"], outputs: ["xq"]),
            Node(name: "conv", operation: .conv2D(attributes), inputs: ["xq", "w", "b"], outputs: ["yq"]),
            Node(name: "dq", operation: .dequantizeLinear, inputs: ["yq"], outputs: ["y"]),
        ])
        graph.initializers["w"] = Tensor(shape: Shape([4, 3, 3, 3]), storage: .int8(codes),
                                         quantization: QuantizationParameters(scales: weightScales, zeroPoints: [0, 0, 0, 0], axis: 0))
        graph.initializers["b"] = Tensor(shape: Shape([4]), storage: .int32(biasCodes))
        graph.valueQuantization = ["xq": QuantizationParameters(scale: inputScale, zeroPoint: 0),
                                   "yq": QuantizationParameters(scale: outputScale, zeroPoint: 0)]
        for kernels in [KernelPreference.reference, .optimized] {
            let y = try runInt8(graph, input: x, shape: shape, kernels: kernels)["y"]!.floats!
            let worst = zip(y, floatY).map { abs($0 - $1) }.max()!
            #expect(worst <= 3 * outputScale, "worst error \(worst), output step \(outputScale)")
        }
    }

    @Test func depthwiseInt8MatchesFloat() throws {
        // Depthwise 3x3 on 2 channels, codes chosen so every real value is exact.
        let x: [Int8] = (0..<18).map { Int8($0 - 9) }          // [1, 3, 3, 2]
        let w: [Int8] = (0..<18).map { Int8(($0 % 3) - 1) }    // [2, 3, 3, 1]
        var graph = Graph(inputs: [ValueInfo(name: "x", dtype: .int8, shape: Shape([1, 3, 3, 2]),
                                             quantization: QuantizationParameters(scale: 1, zeroPoint: 0))],
                          outputs: ["y"], nodes: [Node(name: "dw", operation: .conv2D(Conv2DAttributes(groups: 2)),
                                                       inputs: ["x", "w"], outputs: ["y"])])
        graph.initializers["w"] = Tensor(shape: Shape([2, 3, 3, 1]), storage: .int8(w),
                                         quantization: QuantizationParameters(scales: [1, 1], zeroPoints: [0, 0], axis: 0))
        graph.valueQuantization["y"] = QuantizationParameters(scale: 1, zeroPoint: 0)
        let floatY = runReference(.conv2D(Conv2DAttributes(groups: 2)),
                                  [HostTensor([1, 3, 3, 2], x.map { Float($0) }), HostTensor([2, 3, 3, 1], w.map { Float($0) })],
                                  outputShape: [1, 1, 1, 2])
        let session = try Session(model: Model(graph: graph))
        let y = try session.run(["x": Tensor(shape: Shape([1, 3, 3, 2]), storage: .int8(x))])["y"]!
        #expect(y.storage == .int8(floatY.map { Int8($0) }))
    }

    /// Pools on codes equal the float pools on the real values: max exactly, average within half a step.
    @Test(arguments: [Pool2DAttributes(kernel: (3, 3), strides: (2, 2), padding: .same),
                      Pool2DAttributes(kernel: (2, 3), strides: (1, 2), padding: .explicit(top: 1, left: 2, bottom: 1, right: 0)),
                      Pool2DAttributes(kernel: (2, 2), strides: (1, 1), padding: .same, countIncludePad: true)])
    func poolsMatchFloat(attributes: Pool2DAttributes) throws {
        var random = Int8Random(seed: 21)
        let shape = [2, 7, 6, 3]
        var codes = random.codes(shape.reduce(1, *))
        codes[5] = -128  // the lowest code too
        let q = QuantizationParameters(scale: 0.1, zeroPoint: -7)
        let real = codes.map { 0.1 * Float(Int32($0) + 7) }
        for op in [Operation.maxPool2D(attributes), .averagePool2D(attributes)] {
            let output = try ShapeInference.infer(node: Node(name: "p", operation: op, inputs: ["x"], outputs: ["y"]),
                                                  inputs: [ValueInfo(name: "x", shape: Shape(shape))]).shape
            let expected = runReference(op, [HostTensor(Shape(shape), real)], outputShape: output)
            var graph = Graph(inputs: [ValueInfo(name: "x", dtype: .int8, shape: Shape(shape), quantization: q)], outputs: ["y"],
                              nodes: [Node(name: "p", operation: op, inputs: ["x"], outputs: ["y"])])
            graph.valueQuantization["y"] = q
            let y = try Session(model: Model(graph: graph)).run(["x": Tensor(shape: Shape(shape), storage: .int8(codes))])["y"]!
            guard case .int8(let result) = y.storage else { Issue.record("not int8"); return }
            let actual = result.map { 0.1 * Float(Int32($0) + 7) }
            let worst = zip(actual, expected).map { abs($0 - $1) }.max()!
            if case .maxPool2D = op { #expect(worst < 1e-5, "max pool differs by \(worst)") } else { #expect(worst <= 0.05 + 1e-5) }
        }
    }
}
