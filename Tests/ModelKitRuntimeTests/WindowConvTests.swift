import CModelKitKernels
import ModelKitCore
@testable import ModelKitRuntime
import Testing

/// The window GEMM (conv_windows.c: shallow convolutions such as ResNet-50's 7x7 stride-2 stem,
/// read in place from a zero-padded band of input rows, no im2col) against a plain convolution
/// loop on every kernel path: random strides, dilations, paddings (asymmetric, wider than the
/// kernel's reach), 1-6 channels, output counts that are not a multiple of the 16-column panel,
/// and row ranges that start and end mid-row; then through sessions on 1-3 threads.
@Suite("window convolution")
struct WindowConvTests {
    /// A random geometry with a window of at most 320 values and at least one output pixel.
    static func randomGeometry(_ random: inout SplitMix64) -> mk_conv_geometry {
        func pick(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(random.next() % UInt64(range.count)) }
        let c = pick(1...6), kh = pick(1...7), kw = pick(1...7), sh = pick(1...3), sw = pick(1...3)
        let dh = pick(1...2), dw = pick(1...2)
        let h = (kh - 1) * dh + pick(1...12), w = (kw - 1) * dw + pick(1...12)
        let top = pick(0...4), left = pick(0...4), bottom = pick(0...4), right = pick(0...4)
        let oh = (h + top + bottom - (kh - 1) * dh - 1) / sh + 1, ow = (w + left + right - (kw - 1) * dw - 1) / sw + 1
        return mk_conv_geometry(h: h, w: w, c: kh * kw * c <= 320 ? c : 1, kh: kh, kw: kw, sh: sh, sw: sw, dh: dh, dw: dw,
                                pad_top: top, pad_left: left, oh: oh, ow: ow)
    }

    /// Outputs (with the bias, then clamped to [lo, hi]) and each output's |bias| + sum of |terms|.
    static func loops(_ g: mk_conv_geometry, _ x: [Float], _ w: [Float], _ bias: [Float], lo: Float, hi: Float)
        -> (values: [Float], magnitudes: [Float]) {
        let n = bias.count, depth = g.kh * g.kw * g.c
        var values = [Float](repeating: 0, count: g.oh * g.ow * n), magnitudes = values
        for oy in 0..<g.oh {
            for ox in 0..<g.ow {
                for o in 0..<n {
                    var sum = Double(bias[o]), size = abs(Double(bias[o]))
                    for ky in 0..<g.kh {
                        for kx in 0..<g.kw {
                            let iy = oy * g.sh - g.pad_top + ky * g.dh, ix = ox * g.sw - g.pad_left + kx * g.dw
                            guard iy >= 0, iy < g.h, ix >= 0, ix < g.w else { continue }
                            for ic in 0..<g.c {
                                let term = Double(x[(iy * g.w + ix) * g.c + ic]) * Double(w[o * depth + (ky * g.kw + kx) * g.c + ic])
                                sum += term
                                size += abs(term)
                            }
                        }
                    }
                    let index = (oy * g.ow + ox) * n + o
                    values[index] = min(max(Float(sum), lo), hi)
                    magnitudes[index] = Float(size)
                }
            }
        }
        return (values, magnitudes)
    }

    @Test(arguments: 0..<24)
    func windowsMatchConvolutionLoops(seed: Int) {
        var random = SplitMix64(seed: UInt64(seed * 7919 + 17))
        var g = seed == 0
            ? mk_conv_geometry(h: 30, w: 29, c: 3, kh: 7, kw: 7, sh: 2, sw: 2, dh: 1, dw: 1, pad_top: 3, pad_left: 3, oh: 15, ow: 15)
            : Self.randomGeometry(&random)
        #expect(mk_conv_windows_supported(&g) != 0)
        let n = seed == 0 ? 64 : 1 + Int(random.next() % 40)
        let depth = g.kh * g.kw * g.c, pixels = g.oh * g.ow
        let x = random.floats(g.h * g.w * g.c), w = random.floats(n * depth), bias = random.floats(n)
        let (lo, hi): (Float, Float) = seed % 3 == 0 ? (0, .infinity) : seed % 3 == 1 ? (-0.25, 0.75) : (-.infinity, .infinity)
        let expected = Self.loops(g, x, w, bias, lo: lo, hi: hi)
        for path in KernelPathTests.paths {
            var packed = [Float](repeating: .nan, count: mk_sgemm_packed_b_count(path, n, depth))
            mk_sgemm_pack_b(path, n, depth, w, depth, &packed)
            // Whole, then in ranges that start and end mid-row (each within the scratch's bound).
            for chunk in [pixels, 1 + seed % 11, 7] {
                var y = [Float](repeating: .nan, count: pixels * n)
                var band = [Float](repeating: .nan, count: mk_conv_windows_scratch_count(&g, chunk))
                var start = 0
                while start < pixels {
                    let end = min(pixels, start + chunk)
                    y.withUnsafeMutableBufferPointer { ys in
                        mk_conv_windows_f32(path, &g, x, start, end, n, packed, bias, lo == -.infinity ? 0 : 1, lo, hi, &band,
                                            ys.baseAddress! + start * n)
                    }
                    start = end
                }
                let bad = y.indices.filter { !(abs(y[$0] - expected.values[$0]) <= 1e-5 * max(1, expected.magnitudes[$0])) }
                #expect(bad.isEmpty, "path \(path) \(g) n \(n) chunk \(chunk): \(bad.count) mismatches")
            }
        }
    }

    /// The stem's shape of convolution plans the window GEMM on the AVX2 path, splits by rows on
    /// 1-3 threads with the same results, and matches the reference within 1e-5.
    @Test func stemSessionsAgreeAtEveryThreadCount() throws {
        var random = SplitMix64(seed: 3)
        let input: [Int] = [2, 38, 36, 3], weight: [Int] = [24, 7, 7, 3]
        let attributes = Conv2DAttributes(strides: (2, 2), padding: .same, activation: .relu)
        let graph = Graph(
            inputs: [ValueInfo(name: "x", shape: Shape(input))], outputs: ["y"],
            nodes: [Node(name: "stem", operation: .conv2D(attributes), inputs: ["x", "w", "b"], outputs: ["y"])],
            initializers: ["w": Tensor(shape: Shape(weight), floats: random.floats(weight.reduce(1, *))),
                           "b": Tensor(shape: [weight[0]], floats: random.floats(weight[0]))])
        let x = Tensor(shape: Shape(input), floats: random.floats(input.reduce(1, *)))
        let reference = try Session(model: Model(graph: graph), options: SessionOptions(kernels: .reference)).run(x).floats!
        var single: [Float]?
        for threads in [1, 2, 3] {
            let session = try Session(model: Model(graph: graph), options: SessionOptions.splittingEveryLayer(threads: threads))
            if mk_kernels_active() == Int32(MK_KERNELS_AVX2.rawValue) {
                #expect(session.profile.map(\.kernel) == ["window gemm"])
            }
            let y = try session.run(x).floats!
            let worst = zip(y, reference).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            #expect(worst <= 1e-5, "\(threads) threads: \(worst)")
            if let single {
                #expect(zip(y, single).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) }, "\(threads) threads")
            } else {
                single = y
            }
        }
    }
}
