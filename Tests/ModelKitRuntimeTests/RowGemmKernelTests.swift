import CModelKitKernels
import ModelKitCore
@testable import ModelKitRuntime
import Testing

/// The row GEMM (rowgemm.c: Dense with small weights, direct unpadded convolution) on every
/// dispatch path against plain double-precision loops, and through sessions against the reference
/// kernels at several thread counts.
@Suite("row GEMM kernels")
struct RowGemmKernelTests {
    static var paths: [Int32] { KernelPathTests.paths }

    /// No clamp, ReLU, ReLU6-like and a clamp with a negative floor.
    static let clamps: [(on: Int32, lo: Float, hi: Float)] = [(0, 0, 0), (1, 0, .infinity), (1, 0, 0.5), (1, -0.25, 0.75)]

    /// |actual - expected| / max(1, sum of |terms|) over all outputs: float rounding error scales with the latter.
    static func worstError(_ actual: [Float], _ expected: [Double], _ magnitude: [Double], clamp: (on: Int32, lo: Float, hi: Float)) -> Float {
        actual.indices.map { i in
            let exact = clamp.on != 0 ? min(max(Float(expected[i]), clamp.lo), clamp.hi) : Float(expected[i])
            return abs(actual[i] - exact) / Float(max(1, magnitude[i]))
        }.max() ?? 0
    }

    /// Row counts 1 to 13 cover every tile (1 x 64, 3 x 32 with a repeated row, 6 x 16 with up to
    /// two repeated rows); column counts cover full, partial and lone panels.
    @Test(arguments: [(1, 64, 576), (1, 10, 64), (2, 10, 33), (3, 64, 5), (4, 48, 3), (5, 40, 17), (6, 16, 1),
                      (7, 100, 9), (13, 70, 20), (1, 1, 1), (9, 64, 40), (64, 33, 12)])
    func denseMatchesLoops(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var random = SplitMix64(seed: UInt64(m * 10_000 + n * 100 + k))
        let a = random.floats(m * k), w = random.floats(n * k), bias = random.floats(n)
        var expected = [Double](repeating: 0, count: m * n), magnitude = expected
        for i in 0..<m {
            for j in 0..<n {
                var sum = Double(bias[j]), size = abs(Double(bias[j]))
                for p in 0..<k {
                    sum += Double(a[i * k + p]) * Double(w[j * k + p])
                    size += abs(Double(a[i * k + p]) * Double(w[j * k + p]))
                }
                expected[i * n + j] = sum
                magnitude[i * n + j] = size
            }
        }
        var packed = [Float](repeating: .nan, count: mk_rowgemm_packed_count(n, k))
        mk_rowgemm_pack(n, k, w, k, &packed)
        for path in Self.paths {
            for clamp in Self.clamps {
                var c = [Float](repeating: .nan, count: m * n)
                mk_rowgemm_dense(path, m, n, k, a, k, packed, bias, clamp.on, clamp.lo, clamp.hi, &c, n)
                let worst = Self.worstError(c, expected, magnitude, clamp: clamp)
                #expect(worst <= 1e-5, "path \(path) clamp \(clamp): \(worst)")
            }
            // A column range from the second panel on (how a split across threads calls it), no bias.
            if n > 16 {
                var c = [Float](repeating: .nan, count: m * n)
                packed.withUnsafeBufferPointer { packed in
                    c.withUnsafeMutableBufferPointer { c in
                        mk_rowgemm_dense(path, m, n - 16, k, a, k, packed.baseAddress! + 16 * k, nil, 0, 0, 0,
                                         c.baseAddress! + 16, n)
                    }
                }
                for i in 0..<m {
                    let untouched = c[(i * n)..<(i * n + 16)].allSatisfy { $0.isNaN }
                    #expect(untouched, "path \(path): wrote outside its columns")
                    for j in 16..<n {
                        let error = abs(Double(c[i * n + j]) - (expected[i * n + j] - Double(bias[j])))
                        #expect(error <= 1e-5 * max(1, magnitude[i * n + j]), "path \(path) [\(i), \(j)]: \(error)")
                    }
                }
            }
        }
    }

    struct ConvCase: Sendable, CustomTestStringConvertible {
        /// h, w, c, kh, kw, stride h, stride w, dilation h, outputs.
        var shape: [Int]
        var testDescription: String { "\(shape)" }
    }

    static let convCases: [ConvCase] = [
        ConvCase(shape: [13, 13, 32, 3, 3, 1, 1, 1, 64]),  // The Fashion CNN's second convolution.
        ConvCase(shape: [5, 5, 64, 3, 3, 1, 1, 1, 64]),
        ConvCase(shape: [9, 7, 5, 3, 2, 2, 1, 1, 20]),
        ConvCase(shape: [8, 9, 3, 2, 3, 1, 2, 2, 33]),
        ConvCase(shape: [6, 6, 4, 1, 1, 2, 2, 1, 17]),
        ConvCase(shape: [4, 11, 2, 4, 1, 1, 3, 1, 7]),
    ]

    @Test(arguments: convCases)
    func directConvolutionMatchesLoops(_ testCase: ConvCase) {
        let s = testCase.shape
        let (h, w, c, kh, kw, sh, sw, dh, o) = (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8])
        let (oh, ow) = ((h - (kh - 1) * dh - 1) / sh + 1, (w - kw) / sw + 1)
        var geometry = mk_conv_geometry(h: h, w: w, c: c, kh: kh, kw: kw, sh: sh, sw: sw, dh: dh, dw: 1, pad_top: 0,
                                        pad_left: 0, oh: oh, ow: ow)
        #expect(mk_conv_direct_supported(&geometry) != 0)
        var random = SplitMix64(seed: UInt64(s.reduce(0, +)))
        let image = random.floats(h * w * c), weight = random.floats(o * kh * kw * c), bias = random.floats(o)
        let depth = kh * kw * c, pixels = oh * ow
        var expected = [Double](repeating: 0, count: pixels * o), magnitude = expected
        for oy in 0..<oh {
            for ox in 0..<ow {
                for oc in 0..<o {
                    var sum = Double(bias[oc]), size = abs(Double(bias[oc]))
                    for ky in 0..<kh {
                        for kx in 0..<kw {
                            for ci in 0..<c {
                                let term = Double(image[((oy * sh + ky * dh) * w + ox * sw + kx) * c + ci])
                                    * Double(weight[((oc * kh + ky) * kw + kx) * c + ci])
                                sum += term
                                size += abs(term)
                            }
                        }
                    }
                    expected[(oy * ow + ox) * o + oc] = sum
                    magnitude[(oy * ow + ox) * o + oc] = size
                }
            }
        }
        var packed = [Float](repeating: .nan, count: mk_rowgemm_packed_count(o, depth))
        mk_rowgemm_pack(o, depth, weight, depth, &packed)
        // The whole image, and a range starting and ending mid-row (a thread's share).
        let ranges = [0..<pixels, (pixels / 3)..<(pixels - 1)]
        for path in Self.paths {
            for clamp in Self.clamps {
                for range in ranges {
                    var y = [Float](repeating: .nan, count: pixels * o)
                    y.withUnsafeMutableBufferPointer { y in
                        mk_conv_direct_f32(path, &geometry, image, range.lowerBound, range.upperBound, o, packed, bias,
                                           clamp.on, clamp.lo, clamp.hi, y.baseAddress! + range.lowerBound * o)
                    }
                    let inside = Array(y[(range.lowerBound * o)..<(range.upperBound * o)])
                    let worst = Self.worstError(inside, Array(expected[(range.lowerBound * o)..<(range.upperBound * o)]),
                                                Array(magnitude[(range.lowerBound * o)..<(range.upperBound * o)]), clamp: clamp)
                    #expect(worst <= 1e-5, "path \(path) clamp \(clamp) pixels \(range): \(worst)")
                    let untouched = y[0..<(range.lowerBound * o)].allSatisfy { $0.isNaN }
                        && y[(range.upperBound * o)...].allSatisfy { $0.isNaN }
                    #expect(untouched, "path \(path): wrote outside pixels \(range)")
                }
            }
        }
    }

    /// Padding, width dilation or a single channel keep other kernels; the rest is direct.
    @Test func directConvolutionSupport() {
        func geometry(padTop: Int = 0, padLeft: Int = 0, dw: Int = 1, oh: Int = 3, ow: Int = 3) -> mk_conv_geometry {
            mk_conv_geometry(h: 5, w: 5, c: 2, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: dw, pad_top: padTop,
                             pad_left: padLeft, oh: oh, ow: ow)
        }
        var cases = [(geometry(), true), (geometry(padTop: 1), false), (geometry(padLeft: 1), false),
                     (geometry(dw: 2, ow: 1), false), (geometry(oh: 4), false), (geometry(ow: 4), false)]
        for index in cases.indices {
            let supported = mk_conv_direct_supported(&cases[index].0) != 0
            #expect(supported == cases[index].1, "case \(index)")
        }
    }

    /// The single-channel first layer (conv1ch.c, two pixels per step, 3 x 3 unrolled) with odd
    /// and even output widths and another kernel size, against the reference through sessions.
    @Test(arguments: [[1, 28, 28, 3, 3], [2, 10, 11, 3, 3], [1, 9, 9, 2, 3], [1, 6, 5, 4, 1]])
    func singleChannelConvolutionMatchesReference(_ shape: [Int]) throws {
        let (n, h, w, kh, kw) = (shape[0], shape[1], shape[2], shape[3], shape[4])
        var random = SplitMix64(seed: UInt64(shape.reduce(0, +)))
        for activation in [FusedActivation.none, .relu] {
            let graph = Graph(
                inputs: [ValueInfo(name: "x", shape: [n, h, w, 1])], outputs: ["y"],
                nodes: [Node(name: "c", operation: .conv2D(Conv2DAttributes(activation: activation)), inputs: ["x", "w", "b"],
                             outputs: ["y"])],
                initializers: ["w": Tensor(shape: [32, kh, kw, 1], floats: random.floats(32 * kh * kw)),
                               "b": Tensor(shape: [32], floats: random.floats(32))])
            let input = Tensor(shape: [n, h, w, 1], floats: random.floats(n * h * w))
            let model = Model(graph: graph)
            let y = try Session(model: model).run(input).floats!
            let reference = try Session(model: model, options: SessionOptions(kernels: .reference)).run(input).floats!
            let worst = zip(y, reference).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            #expect(worst <= 1e-5, "\(shape) \(activation): \(worst)")
        }
    }

    /// A small CNN whose convolutions and dense layers all take the row GEMM, through sessions at
    /// 1 to 3 threads (every layer split), against the reference kernels; every thread count
    /// gives the same bits.
    @Test func sessionsMatchReferenceAtEveryThreadCount() throws {
        var random = SplitMix64(seed: 23)
        // Weights scaled by about 1/sqrt(fan-in) keep every layer's outputs near 1, as in a trained
        // network, so float rounding stays within the tolerance through six layers.
        func tensor(_ shape: Shape, scale: Float = 1) -> Tensor {
            Tensor(shape: shape, floats: random.floats(shape.elementCount!, scale: scale))
        }
        let graph = Graph(
            inputs: [ValueInfo(name: "x", shape: [-1, 12, 12, 3])], outputs: ["y"],
            nodes: [
                Node(name: "c1", operation: .conv2D(Conv2DAttributes(activation: .relu)), inputs: ["x", "w1", "b1"], outputs: ["h1"]),
                Node(name: "c2", operation: .conv2D(Conv2DAttributes(strides: (2, 2), activation: .relu6)),
                     inputs: ["h1", "w2", "b2"], outputs: ["h2"]),
                Node(name: "c3", operation: .conv2D(Conv2DAttributes(activation: .leakyRelu(alpha: 0.1))),
                     inputs: ["h2", "w3"], outputs: ["h3"]),
                Node(name: "f", operation: .flatten(axis: 1), inputs: ["h3"], outputs: ["flat"]),
                Node(name: "d1", operation: .dense(activation: .relu), inputs: ["flat", "w4", "b4"], outputs: ["h4"]),
                Node(name: "d2", operation: .dense(activation: .none), inputs: ["h4", "w5", "b5"], outputs: ["y"]),
            ],
            initializers: ["w1": tensor([20, 3, 3, 3], scale: 0.2), "b1": tensor([20]), "w2": tensor([40, 3, 3, 20], scale: 0.1),
                           "b2": tensor([40]), "w3": tensor([24, 2, 2, 40], scale: 0.1), "w4": tensor([37, 216], scale: 0.07),
                           "b4": tensor([37]), "w5": tensor([10, 37], scale: 0.15), "b5": tensor([10])])
        let model = Model(graph: graph)
        for batch in [1, 3] {
            let input = tensor([batch, 12, 12, 3])
            let reference = try Session(model: model, options: SessionOptions(kernels: .reference)).run(input).floats!
            var first: [Float]?
            for threads in 1...3 {
                let y = try Session(model: model, options: .splittingEveryLayer(threads: threads)).run(input).floats!
                let worst = zip(y, reference).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
                #expect(worst <= 1e-5, "batch \(batch) threads \(threads): \(worst)")
                if let first { #expect(y == first, "batch \(batch): \(threads) threads differ from 1") } else { first = y }
            }
        }
    }

    /// A Dense too large for the row GEMM's weight limit still takes it below the blocked GEMM's
    /// 6-row tile (batch 1 and 5), and the blocked GEMM from 6 rows on; every choice matches the
    /// reference at 1 and 2 threads.
    @Test func largeDenseTakesTheRowGemmAtSmallBatches() throws {
        var random = SplitMix64(seed: 41)
        let (depth, outputs) = (700, 300)
        #expect(depth * outputs > FloatDenseStep.rowGemmWeightLimit)
        let graph = Graph(
            inputs: [ValueInfo(name: "x", shape: [-1, depth])], outputs: ["y"],
            nodes: [Node(name: "d", operation: .dense(activation: .relu), inputs: ["x", "w", "b"], outputs: ["y"])],
            initializers: ["w": Tensor(shape: [outputs, depth], floats: random.floats(outputs * depth, scale: 0.04)),
                           "b": Tensor(shape: [outputs], floats: random.floats(outputs))])
        let model = Model(graph: graph)
        for (batch, kernel) in [(1, "row gemm"), (5, "row gemm"), (6, "gemm")] {
            let input = Tensor(shape: [batch, depth], floats: random.floats(batch * depth))
            let reference = try Session(model: model, options: SessionOptions(kernels: .reference)).run(input).floats!
            for threads in [1, 2] {
                let session = try Session(model: model, options: .splittingEveryLayer(threads: threads))
                let y = try session.run(input).floats!
                let worst = zip(y, reference).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 1
                #expect(worst <= 1e-5, "batch \(batch) threads \(threads): \(worst)")
                #expect(session.profile.map(\.kernel) == [kernel], "batch \(batch)")
            }
        }
    }
}
