import CModelKitKernels
import ModelKitCore
@testable import ModelKitRuntime
import Testing

/// The Winograd F(2x2, 3x3) and F(4x4, 3x3) convolutions (winograd.c through FloatConv2DStep)
/// against the reference Conv2D on every kernel path, each tile size on every case: odd sizes
/// (edge tiles), same/valid/asymmetric padding, clamps, channels not a multiple of 8,
/// more channels than one 256-channel pass, several tile blocks, and row ranges that start and end
/// mid-tile. The error bound is 1e-5 of each output's sum of |terms| (as for the packed GEMM):
/// the transforms add and subtract inputs, so where a deep sum cancels to near zero the error
/// is about twice the im2col GEMM's (measured ~1e-7 of the |terms| sum for both; against
/// max(1, |output|) the GEMM reaches 1.4e-5 and Winograd 2.7e-5 at 256 channels of [-1, 1] data;
/// F(4x4)'s transforms scale by up to 100, its error is still ~1.4e-7 of the |terms| sum).
@Suite("winograd convolution")
struct WinogradKernelTests {
    typealias Case = GemmKernelTests.ConvCase

    static let cases: [Case] = [
        Case(input: [1, 14, 14, 32], weight: [32, 3, 3, 32], attributes: Conv2DAttributes(padding: .same, activation: .relu)),
        Case(input: [2, 11, 13, 40], weight: [33, 3, 3, 40], attributes: Conv2DAttributes(padding: .same, activation: .relu6)),
        // Unpadded with a weight too big for the direct row GEMM.
        Case(input: [1, 12, 12, 160], weight: [48, 3, 3, 160], attributes: Conv2DAttributes()),
        Case(input: [1, 12, 11, 36], weight: [40, 3, 3, 36],
             attributes: Conv2DAttributes(padding: .explicit(top: 0, left: 2, bottom: 2, right: 0))),
        // 420 tiles: two blocks of 210.
        Case(input: [1, 42, 40, 32], weight: [32, 3, 3, 32], attributes: Conv2DAttributes(padding: .same)),
        Case(input: [1, 10, 10, 260], weight: [32, 3, 3, 260], attributes: Conv2DAttributes(padding: .same, activation: .relu)),
        // 21x19 outputs (F(4x4) by default), 37 channels: an 8-channel tail in both transforms.
        Case(input: [1, 21, 19, 37], weight: [35, 3, 3, 37], attributes: Conv2DAttributes(padding: .same, activation: .relu6)),
        // 57x57 outputs: F(4x4) 225 tiles in two blocks (F(2x2): 841 in four); padding on two sides
        // only (unpadded, the small weight would take the direct row GEMM).
        Case(input: [1, 58, 57, 32], weight: [32, 3, 3, 32],
             attributes: Conv2DAttributes(padding: .explicit(top: 1, left: 0, bottom: 0, right: 2))),
    ]

    @Test(arguments: cases, [2, 4])
    func matchesReference(_ testCase: Case, tile: Int) throws {
        let (inputShape, weightShape, outputShape) = (Shape(testCase.input), Shape(testCase.weight), try testCase.outputShape())
        let (x, w, bias, expected, magnitude) = Self.fixture(testCase, seed: UInt64(testCase.input.reduce(0, +) * 7 + testCase.weight[0]))
        let rows = outputShape[0] * outputShape[1] * outputShape[2]
        for path in KernelPathTests.paths {
            // The whole batch at once, then in ranges that cut tiles and images.
            for lengths in [[rows], [1, 7, rows / 3 + 5, 13] + [Int](repeating: 29, count: rows)] {
                var y = [Float](repeating: .nan, count: outputShape.elementCount!)
                var buffers: [PlanBuffer] = []
                var method: FloatConv2DStep.Method?
                x.withUnsafeBufferPointer { xs in
                    w.withUnsafeBufferPointer { ws in
                        bias.withUnsafeBufferPointer { bs in
                            y.withUnsafeMutableBufferPointer { ys in
                                let step = FloatConv2DStep.make(
                                    input: TensorView(xs.baseAddress!, inputShape), weight: TensorView(ws.baseAddress!, weightShape),
                                    bias: TensorView(bs.baseAddress!, [bias.count]), attributes: testCase.attributes,
                                    output: MutableTensorView(ys.baseAddress!, outputShape), buffers: &buffers, path: path,
                                    winogradTile: tile)!
                                method = step.method
                                #expect(step.winogradTile == tile)
                                var scratch = [Float](repeating: .nan, count: step.scratchCount)
                                var start = 0
                                for length in lengths where start < rows {
                                    let end = min(rows, start + length)
                                    scratch.withUnsafeMutableBufferPointer { step.run(rows: start..<end, scratch: $0.baseAddress!) }
                                    start = end
                                }
                            }
                        }
                    }
                }
                #expect(method == .winograd)
                let bad = y.indices.filter { !(abs(y[$0] - expected[$0]) <= 1e-5 * max(1, magnitude[$0])) }
                #expect(bad.isEmpty, "path \(path), \(lengths.count) ranges: \(bad.count) mismatches, first at \(bad.first ?? -1)")
            }
        }
    }

    /// The whole step on 1-3 threads: few tiles and many outputs split by output columns (a task
    /// per thread: its columns' GEMMs and output transform), the others by tiles; each against the
    /// reference, and every thread count within 1e-5 of one thread.
    static let threadCases: [(Case, split: String)] = [
        // 4 x 25 tiles <= 104 outputs: columns (with a half-panel tail).
        (Case(input: [1, 10, 10, 40], weight: [104, 3, 3, 40], attributes: Conv2DAttributes(padding: .same, activation: .relu)),
         "columns"),
        // Two images of 25 tiles, 4 x 50 <= 208 outputs: columns, image by image; padding on two sides.
        (Case(input: [2, 11, 11, 33], weight: [208, 3, 3, 33],
              attributes: Conv2DAttributes(padding: .explicit(top: 1, left: 0, bottom: 0, right: 1))), "columns"),
        // F(4x4) (22x22 outputs): 4 x 36 tiles <= 148 outputs: columns.
        (Case(input: [1, 22, 22, 40], weight: [148, 3, 3, 40], attributes: Conv2DAttributes(padding: .same, activation: .relu6)),
         "columns"),
        // 14x14: 4 x 49 tiles > 72 outputs: tiles.
        (Case(input: [1, 14, 14, 40], weight: [72, 3, 3, 40], attributes: Conv2DAttributes(padding: .same)), "tiles"),
    ]

    @Test(arguments: threadCases.indices)
    func threadSplitsMatchReference(_ index: Int) throws {
        let (testCase, split) = Self.threadCases[index]
        let (inputShape, weightShape, outputShape) = (Shape(testCase.input), Shape(testCase.weight), try testCase.outputShape())
        let (x, w, bias, expected, magnitude) = Self.fixture(testCase, seed: UInt64(index * 31 + 5))
        for path in KernelPathTests.paths {
            var single: [Float] = []
            for threads in 1...3 {
                let pool = WorkerPool(threads: threads, minimumWork: 0)
                var y = [Float](repeating: .nan, count: outputShape.elementCount!)
                var buffers: [PlanBuffer] = []
                var columnTasks: Int?
                x.withUnsafeBufferPointer { xs in
                    w.withUnsafeBufferPointer { ws in
                        bias.withUnsafeBufferPointer { bs in
                            y.withUnsafeMutableBufferPointer { ys in
                                let step = FloatConv2DStep.make(
                                    input: TensorView(xs.baseAddress!, inputShape), weight: TensorView(ws.baseAddress!, weightShape),
                                    bias: TensorView(bs.baseAddress!, [bias.count]), attributes: testCase.attributes,
                                    output: MutableTensorView(ys.baseAddress!, outputShape), buffers: &buffers, path: path)!
                                #expect(step.method == .winograd)
                                columnTasks = step.columnTasks(threads: threads)
                                var scratch = [Float](repeating: .nan, count: step.scratchCount * threads)
                                scratch.withUnsafeMutableBufferPointer {
                                    step.run(scratch: $0.baseAddress!, scratchStride: step.scratchCount, pool: pool)
                                }
                            }
                        }
                    }
                }
                if threads > 1 { #expect((columnTasks != nil) == (split == "columns"), "\(threads) threads: \(String(describing: columnTasks))") }
                let bad = y.indices.filter { !(abs(y[$0] - expected[$0]) <= 1e-5 * max(1, magnitude[$0])) }
                #expect(bad.isEmpty, "path \(path), \(threads) threads: \(bad.count) mismatches, first at \(bad.first ?? -1)")
                if threads == 1 {
                    single = y
                } else {
                    let apart = y.indices.filter { !(abs(y[$0] - single[$0]) <= 1e-5) }
                    #expect(apart.isEmpty, "path \(path), \(threads) threads differ from 1 at \(apart.count) outputs")
                }
            }
        }
    }

    /// Per output, |bias| plus the sum of |input x weight| over its window (padding contributes nothing).
    /// Random input, weight and bias for `testCase`, the reference conv's output and each output's
    /// term magnitudes (the tolerance's scale).
    static func fixture(_ testCase: Case, seed: UInt64) -> (x: [Float], w: [Float], bias: [Float], expected: [Float],
                                                             magnitude: [Float]) {
        var random = SplitMix64(seed: seed)
        let inputShape = Shape(testCase.input), weightShape = Shape(testCase.weight)
        let x = random.floats(inputShape.elementCount!), w = random.floats(weightShape.elementCount!)
        let bias = random.floats(testCase.weight[0])
        let outputShape = try! testCase.outputShape()
        let expected = runReference(.conv2D(testCase.attributes),
                                    [HostTensor(inputShape, x), HostTensor(weightShape, w), HostTensor([bias.count], bias)],
                                    outputShape: outputShape)
        return (x, w, bias, expected, termMagnitudes(x, inputShape, w, weightShape, bias, testCase.attributes, outputShape))
    }

    static func termMagnitudes(_ x: [Float], _ inputShape: Shape, _ w: [Float], _ weightShape: Shape, _ bias: [Float],
                               _ a: Conv2DAttributes, _ outputShape: Shape) -> [Float] {
        let (n, h, wd, c) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let (o, oh, ow) = (weightShape[0], outputShape[1], outputShape[2])
        let pad = a.padding.resolve(height: h, width: wd, kernel: (3, 3), stride: (1, 1), dilation: (1, 1))
        var result = [Float](repeating: 0, count: n * oh * ow * o)
        for image in 0..<n {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    for oc in 0..<o {
                        var sum = Double(abs(bias[oc]))
                        for ky in 0..<3 {
                            for kx in 0..<3 {
                                let iy = oy + ky - pad.top, ix = ox + kx - pad.left
                                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                for ic in 0..<c {
                                    sum += abs(Double(x[((image * h + iy) * wd + ix) * c + ic]) * Double(w[((oc * 3 + ky) * 3 + kx) * c + ic]))
                                }
                            }
                        }
                        result[((image * oh + oy) * ow + ox) * o + oc] = Float(sum)
                    }
                }
            }
        }
        return result
    }

    /// Too few output pixels, too few channels, a stride or a leaky ReLU keep the im2col GEMM (or,
    /// for a window of up to 320 values on the AVX2 path, its in-place form).
    @Test func smallOrStridedConvolutionsKeepIm2col() {
        let cases: [([Int], [Int], Conv2DAttributes)] = [
            ([1, 6, 7, 64], [64, 3, 3, 64], Conv2DAttributes(padding: .same)),
            ([1, 14, 14, 16], [64, 3, 3, 16], Conv2DAttributes(padding: .same)),
            ([1, 28, 28, 64], [64, 3, 3, 64], Conv2DAttributes(strides: (2, 2), padding: .same)),
            ([1, 14, 14, 64], [64, 3, 3, 64], Conv2DAttributes(padding: .same, activation: .leakyRelu(alpha: 0.1))),
        ]
        for (input, weight, attributes) in cases {
            let count = Shape(input).elementCount!, weightCount = Shape(weight).elementCount!
            let x = [Float](repeating: 1, count: count), w = [Float](repeating: 0.5, count: weightCount)
            let oh = attributes.strideH == 2 ? input[1] / 2 : input[1], ow = attributes.strideW == 2 ? input[2] / 2 : input[2]
            var y = [Float](repeating: 0, count: oh * ow * weight[0])
            var buffers: [PlanBuffer] = []
            let method = x.withUnsafeBufferPointer { xs in
                w.withUnsafeBufferPointer { ws in
                    y.withUnsafeMutableBufferPointer { ys in
                        FloatConv2DStep.make(input: TensorView(xs.baseAddress!, Shape(input)),
                                             weight: TensorView(ws.baseAddress!, Shape(weight)), bias: nil, attributes: attributes,
                                             output: MutableTensorView(ys.baseAddress!, [1, oh, ow, weight[0]]),
                                             buffers: &buffers)!.method
                    }
                }
            }
            #expect(method == .im2col || method == .windows, "\(input) * \(weight)")
        }
    }
}
