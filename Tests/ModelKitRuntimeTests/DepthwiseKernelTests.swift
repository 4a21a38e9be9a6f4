import CModelKitKernels
import ModelKitCore
@testable import ModelKitRuntime
import Testing

/// The depthwise kernels (float and int8, each C path forced) against the reference Conv2D, on
/// random shapes, strides, dilations, paddings and activations, directly and through sessions
/// with 1 and 2 threads.
@Suite("depthwise kernels")
struct DepthwiseKernelTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var input: [Int]
        var kernel: (Int, Int)
        var attributes: Conv2DAttributes
        var testDescription: String {
            "\(input) k\(kernel) s\(attributes.strideH),\(attributes.strideW) d\(attributes.dilationH) \(attributes.padding) \(attributes.activation)"
        }
        var weightShape: Shape { Shape([input[3], kernel.0, kernel.1, 1]) }
    }

    static let cases: [Case] = [
        // Channel counts around the 32- and 8-wide AVX2 blocks and the masked tail.
        Case(input: [1, 7, 7, 32], kernel: (3, 3), attributes: Conv2DAttributes(padding: .same, groups: 32, activation: .relu6)),
        Case(input: [2, 9, 8, 45], kernel: (3, 3), attributes: Conv2DAttributes(strides: (2, 2), padding: .same, groups: 45)),
        Case(input: [1, 6, 11, 3], kernel: (3, 3), attributes: Conv2DAttributes(strides: (1, 2), dilations: (2, 2),
                                                                               padding: .explicit(top: 2, left: 0, bottom: 1, right: 3),
                                                                               groups: 3, activation: .relu)),
        Case(input: [3, 10, 10, 17], kernel: (5, 5), attributes: Conv2DAttributes(strides: (2, 2), padding: .same, groups: 17,
                                                                                 activation: .leakyRelu(alpha: 0.2))),
        Case(input: [1, 5, 5, 8], kernel: (3, 3), attributes: Conv2DAttributes(padding: .valid, groups: 8)),
        Case(input: [2, 4, 6, 64], kernel: (1, 3), attributes: Conv2DAttributes(padding: .explicit(top: 0, left: 1, bottom: 0, right: 1),
                                                                               groups: 64, activation: .clip(min: -0.5, max: 0.5))),
        // Multiples of 16 channels with interior pixels (the AVX2 interior kernels: 4 pixels at a
        // time in float, tap pairs in int8), stride 2, dilation, a 1-row window and odd tap counts.
        Case(input: [2, 9, 14, 48], kernel: (3, 3), attributes: Conv2DAttributes(strides: (2, 2), padding: .same, groups: 48,
                                                                                activation: .relu6)),
        Case(input: [1, 9, 13, 16], kernel: (3, 3), attributes: Conv2DAttributes(dilations: (2, 2), padding: .same, groups: 16)),
        Case(input: [1, 6, 12, 32], kernel: (2, 2), attributes: Conv2DAttributes(padding: .valid, groups: 32, activation: .relu)),
        Case(input: [1, 8, 11, 16], kernel: (1, 5), attributes: Conv2DAttributes(strides: (1, 3), padding: .same, groups: 16)),
        // Top and bottom output rows whose windows lose one or two rows to the padding (the float
        // 4-pixel kernel on the remaining window rows), with dilation.
        Case(input: [1, 7, 12, 32], kernel: (5, 3), attributes: Conv2DAttributes(dilations: (2, 1),
                                                                                padding: .explicit(top: 4, left: 1, bottom: 3, right: 1),
                                                                                groups: 32, activation: .relu6)),
        // A window larger than the padded image on one side: rows with no valid taps at all.
        Case(input: [1, 2, 3, 12], kernel: (3, 3), attributes: Conv2DAttributes(padding: .explicit(top: 3, left: 1, bottom: 3, right: 1),
                                                                               groups: 12)),
        Case(input: [1, 2, 3, 16], kernel: (3, 3), attributes: Conv2DAttributes(padding: .explicit(top: 3, left: 1, bottom: 3, right: 1),
                                                                               groups: 16)),
    ]

    static func outputShape(_ c: Case) -> Shape {
        let a = c.attributes
        let pad = a.padding.resolve(height: c.input[1], width: c.input[2], kernel: c.kernel, stride: (a.strideH, a.strideW),
                                    dilation: (a.dilationH, a.dilationW))
        let oh = (c.input[1] + pad.top + pad.bottom - (c.kernel.0 - 1) * a.dilationH - 1) / a.strideH + 1
        let ow = (c.input[2] + pad.left + pad.right - (c.kernel.1 - 1) * a.dilationW - 1) / a.strideW + 1
        return Shape([c.input[0], oh, ow, c.input[3]])
    }

    @Test(arguments: cases)
    func floatPathsMatchReference(_ c: Case) throws {
        var random = SplitMix64(seed: UInt64(c.input.reduce(0, +) * 7 + c.kernel.0))
        let output = Self.outputShape(c)
        let x = HostTensor(Shape(c.input), random.floats(c.input.reduce(1, *)))
        let w = HostTensor(c.weightShape, random.floats(c.weightShape.elementCount!))
        let b = HostTensor([c.input[3]], random.floats(c.input[3]))
        let expected = runReference(.conv2D(c.attributes), [x, w, b], outputShape: output)
        #expect(Set(expected).count > expected.count / 4, "degenerate reference output")
        for path in [MK_KERNELS_PORTABLE, MK_KERNELS_AVX2] {
            var y = [Float](repeating: .nan, count: output.elementCount!)
            x.data.withUnsafeBufferPointer { xp in
                w.data.withUnsafeBufferPointer { wp in
                    b.data.withUnsafeBufferPointer { bp in
                        y.withUnsafeMutableBufferPointer { yp in
                            let step = DepthwiseConv2D(input: TensorView(xp.baseAddress!, x.shape), weight: TensorView(wp.baseAddress!, w.shape),
                                                       bias: TensorView(bp.baseAddress!, b.shape), attributes: c.attributes,
                                                       output: MutableTensorView(yp.baseAddress!, output), pool: nil)
                            step.run(rows: 0..<step.rows, path: Int32(path.rawValue))
                        }
                    }
                }
            }
            let bad = mismatches(y, expected, absolute: 1e-5, relative: 1e-5)
            #expect(bad.isEmpty, "path \(path.rawValue): \(bad.count) mismatches, first at \(bad.first ?? -1)")
        }
    }

    @Test(arguments: cases)
    func int8PathsMatchReferenceBitExact(_ c: Case) throws {
        var random = Int8Random(seed: UInt64(c.input.reduce(1, *) + c.kernel.1))
        let output = Self.outputShape(c)
        let channels = c.input[3]
        let codes = random.codes(c.input.reduce(1, *))
        let weights = random.codes(c.weightShape.elementCount!)
        let bias = (0..<channels).map { _ in Int32(random.next() % 4001) - 2000 }
        let scales = (0..<channels).map { _ in 0.002 + abs(random.float(0.01)) }
        let inputShape = Shape(c.input)
        let activation: FusedActivation = if case .leakyRelu = c.attributes.activation { .none } else { c.attributes.activation }
        // 0.2: multipliers well below 1 (the vector requantization) with codes spread over the
        // range; 0.0015: multipliers still below 1 but sums far beyond int16 after requantizing
        // (the interior kernel saturates through int16 before clamping); 0.0003: some
        // multipliers above 1 (a left shift: the scalar requantization).
        for outputScale: Float in [0.2, 0.0015, 0.0003] {
        let requantization = Requantization(inputScale: 0.05, weightScales: scales, outputScale: outputScale, outputZeroPoint: 3,
                                            activation: activation)
        var expected = [Int8](repeating: 0, count: output.elementCount!)
        codes.withUnsafeBufferPointer { xp in
            weights.withUnsafeBufferPointer { wp in
                bias.withUnsafeBufferPointer { bp in
                    expected.withUnsafeMutableBufferPointer { yp in
                        Int8ReferenceKernels.conv2D(input: Int8View(xp.baseAddress!, inputShape, scale: 0.05, zeroPoint: -7),
                                                    weight: wp.baseAddress!, weightShape: c.weightShape, bias: bp.baseAddress!,
                                                    attributes: c.attributes, requantization: requantization,
                                                    output: MutableInt8View(yp.baseAddress!, output, scale: outputScale, zeroPoint: 3))
                    }
                }
            }
        }
        if outputScale > 0.1 { #expect(Set(expected).count > 5, "degenerate reference output") }
        for path in [MK_KERNELS_PORTABLE, MK_KERNELS_AVX2] {
            for threads in [1, 2] {
                // Every size splits across the threads: the tasks must cover the rows exactly.
                let pool = WorkerPool(threads: threads, minimumWork: 0)
                var y = [Int8](repeating: 0x55, count: output.elementCount!)
                codes.withUnsafeBufferPointer { xp in
                    weights.withUnsafeBufferPointer { wp in
                        bias.withUnsafeBufferPointer { bp in
                            y.withUnsafeMutableBufferPointer { yp in
                                let step = Int8DepthwiseConv2D(
                                    input: Int8View(xp.baseAddress!, inputShape, scale: 0.05, zeroPoint: -7), weight: wp.baseAddress!,
                                    weightShape: c.weightShape, bias: bp.baseAddress!, attributes: c.attributes,
                                    requantization: requantization,
                                    output: MutableInt8View(yp.baseAddress!, output, scale: outputScale, zeroPoint: 3), pool: pool)
                                step.run(pool: pool, path: Int32(path.rawValue))
                            }
                        }
                    }
                }
                #expect(y == expected, "path \(path.rawValue), \(threads) threads, output scale \(outputScale)")
            }
        }
        }
    }

    /// Whole sessions: the optimized plan (which picks the depthwise step) against the reference
    /// plan, single-threaded and on 2 threads.
    @Test(arguments: cases.prefix(4))
    func sessionsMatchReference(_ c: Case) throws {
        var random = SplitMix64(seed: UInt64(c.input[3] * 131))
        let graph = Graph(
            inputs: [ValueInfo(name: "x", shape: Shape(c.input))], outputs: ["y"],
            nodes: [Node(name: "dw", operation: .conv2D(c.attributes), inputs: ["x", "w", "b"], outputs: ["y"])],
            initializers: ["w": Tensor(shape: c.weightShape, floats: random.floats(c.weightShape.elementCount!)),
                           "b": Tensor(shape: [c.input[3]], floats: random.floats(c.input[3]))])
        let input = Tensor(shape: Shape(c.input), floats: random.floats(c.input.reduce(1, *)))
        let reference = try Session(model: Model(graph: graph), options: SessionOptions(kernels: .reference)).run(input).floats!
        for threads in [1, 2] {
            let optimized = try Session(model: Model(graph: graph), options: .splittingEveryLayer(threads: threads)).run(input).floats!
            let bad = mismatches(optimized, reference)
            #expect(bad.isEmpty, "\(threads) threads: \(bad.count) mismatches")
        }
    }

    @Test func recognisesOnlyChannelMultiplierOne() {
        let depthwise = Conv2DAttributes(groups: 8)
        #expect(Depthwise.applies(input: [1, 5, 5, 8], weight: [8, 3, 3, 1], attributes: depthwise))
        // Channel multiplier 2, grouped (not depthwise) and plain convolutions stay on other kernels.
        #expect(!Depthwise.applies(input: [1, 5, 5, 8], weight: [16, 3, 3, 1], attributes: depthwise))
        #expect(!Depthwise.applies(input: [1, 5, 5, 8], weight: [8, 3, 3, 2], attributes: Conv2DAttributes(groups: 4)))
        #expect(!Depthwise.applies(input: [1, 5, 5, 1], weight: [1, 3, 3, 1], attributes: Conv2DAttributes()))
    }
}
