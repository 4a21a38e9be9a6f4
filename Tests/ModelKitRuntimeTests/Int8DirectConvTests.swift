import CModelKitKernels
import ModelKitCore
@testable import ModelKitRuntime
import Testing

/// The direct int8 convolution (conv_direct_s8.c) against plain loops with the reference
/// arithmetic, bit-exact on every path this CPU has: 1 to 40 channels (odd runs whose last pair
/// meets a zero weight), padding, strides, dilations, partial 16-channel panels, column ranges
/// from a later panel, pixel ranges that start mid-image with only their input rows widened, and
/// multipliers from tiny right shifts to left shifts (which take the scalar requantization).
@Suite("int8 direct convolution")
struct Int8DirectConvTests {
    /// h, w, c, kh, kw, sh, sw, dh, dw, pad top/left (bottom/right likewise), outputs.
    @Test(arguments: [
        [28, 28, 1, 3, 3, 1, 1, 1, 1, 0, 32], [13, 13, 32, 3, 3, 1, 1, 1, 1, 0, 64], [5, 5, 64, 3, 3, 1, 1, 1, 1, 0, 64],
        [9, 11, 17, 3, 3, 2, 2, 1, 1, 1, 37], [10, 10, 40, 3, 2, 1, 2, 2, 2, 2, 20], [7, 6, 3, 5, 5, 1, 1, 1, 1, 2, 16],
        [8, 9, 3, 1, 1, 1, 1, 1, 1, 0, 5], [12, 7, 5, 3, 3, 3, 1, 1, 3, 1, 48],
    ])
    func directConvolutionIsExact(_ s: [Int]) {
        let (h, w, c, kh, kw, sh, sw, dh, dw, pad, n) = (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10])
        let oh = (h + 2 * pad - ((kh - 1) * dh + 1)) / sh + 1, ow = (w + 2 * pad - ((kw - 1) * dw + 1)) / sw + 1
        let depth = kh * kw * c
        var random = Int8Random(seed: UInt64(h * 1000 + c * 10 + kh + n))
        let image = KernelPathTests.fullRangeCodes(h * w * c, &random)
        let weights = random.codes(n * depth)
        let bias = (0..<n).map { _ in Int32(random.next() % 20001) - 10000 }
        let inputZeroPoint = Int32(random.next() % 256) - 128
        var g = mk_conv_geometry(h: h, w: w, c: c, kh: kh, kw: kw, sh: sh, sw: sw, dh: dh, dw: dw, pad_top: pad,
                                 pad_left: pad, oh: oh, ow: ow)
        var packed = [Int16](repeating: 99, count: mk_conv_s8_direct_packed_count(&g, n))
        mk_conv_s8_direct_pack(&g, n, weights, &packed)
        let rowLength = 2 * mk_conv_s8_direct_pairs(&g)
        // Pixels from a third of the image on, so the widened rows start below the top.
        let (p0, p1) = (oh * ow / 3, oh * ow)
        let (y0, y1) = (p0 / ow * sh, (p1 - 1) / ow * sh + (kh - 1) * dh + 1)
        // Columns from the second panel on when there is one.
        let first = n > 16 ? 16 : 0
        for scale: Double in [1e-9, 0.0004, 0.03, 3] {
            let multipliers = (0..<n).map { _ in QuantizedMultiplier(scale * (0.5 + Double(random.next() % 1000) / 1000)) }
            let (zeroPoint, minimum, maximum): (Int32, Int32, Int32) = (5, -100, 120)
            // Columns before `first` are not written: they keep the fill.
            var expected = [Int8](repeating: 99, count: (p1 - p0) * n)
            for p in p0..<p1 {
                let (oy, ox) = (p / ow, p % ow)
                for j in first..<n {
                    var acc = bias[j]
                    for ky in 0..<kh {
                        for kx in 0..<kw {
                            let (iy, ix) = (oy * sh - pad + ky * dh, ox * sw - pad + kx * dw)
                            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                            for channel in 0..<c {
                                acc &+= (Int32(image[(iy * w + ix) * c + channel]) - inputZeroPoint)
                                    * Int32(weights[j * depth + (ky * kw + kx) * c + channel])
                            }
                        }
                    }
                    expected[(p - p0) * n + j] = Int8(min(max(multipliers[j].apply(acc) &+ zeroPoint, minimum), maximum))
                }
            }
            let multiplierValues = multipliers.map(\.multiplier), shifts = multipliers.map(\.shift)
            for path in KernelPathTests.paths {
                var rows = [Int16](repeating: 99, count: mk_conv_s8_direct_rows_count(&g, y1 - y0))
                mk_conv_s8_direct_widen(path, &g, image, inputZeroPoint, y0, y1, &rows)
                var y = [Int8](repeating: 99, count: (p1 - p0) * n)
                bias.withUnsafeBufferPointer { b in
                    multiplierValues.withUnsafeBufferPointer { mv in
                        shifts.withUnsafeBufferPointer { sv in
                            var r = mk_requantization(bias: b.baseAddress! + first, multiplier: mv.baseAddress! + first,
                                                      shift: sv.baseAddress! + first, output_zero_point: zeroPoint,
                                                      minimum: minimum, maximum: maximum)
                            packed.withUnsafeBufferPointer { w in
                                y.withUnsafeMutableBufferPointer { out in
                                    mk_conv_s8_direct(path, &g, rows, y0, p0, p1, n - first, w.baseAddress! + first * rowLength,
                                                      &r, out.baseAddress! + first, n)
                                }
                            }
                        }
                    }
                }
                #expect(y == expected, "path \(path) scale \(scale)")
            }
        }
    }

    /// The fused max pooling against the direct convolution's output pooled by the reference:
    /// 2x2, 3x2 at stride 3x2 (rows left over), and 1x3; pooled ranges from mid-image.
    @Test(arguments: [[2, 2, 2, 2], [3, 2, 3, 2], [1, 3, 1, 4]])
    func fusedMaxPoolIsExact(_ p: [Int]) throws {
        let (h, w, c, n) = (15, 13, 6, 21)
        var g = mk_conv_geometry(h: h, w: w, c: c, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pad_top: 1, pad_left: 1,
                                 oh: h, ow: w)
        var window = mk_pool_window(kh: p[0], kw: p[1], sh: p[2], sw: p[3], oh: (h - p[0]) / p[2] + 1,
                                    ow: (w - p[1]) / p[3] + 1)
        #expect(mk_conv_s8_direct_maxpool_supported(&g, &window) != 0)
        var random = Int8Random(seed: UInt64(p.reduce(0, { $0 * 10 + $1 })))
        let image = KernelPathTests.fullRangeCodes(h * w * c, &random)
        let weights = random.codes(n * 9 * c)
        let bias = (0..<n).map { _ in Int32(random.next() % 2001) - 1000 }
        let multipliers = (0..<n).map { _ in QuantizedMultiplier(0.002 * (0.5 + Double(random.next() % 1000) / 1000)) }
        var packed = [Int16](repeating: 0, count: mk_conv_s8_direct_packed_count(&g, n))
        mk_conv_s8_direct_pack(&g, n, weights, &packed)
        let (m, shifts) = (multipliers.map(\.multiplier), multipliers.map(\.shift))
        let hp = mk_conv_s8_direct_padded_height(&g)
        for path in KernelPathTests.paths {
            var rows = [Int16](repeating: 0, count: mk_conv_s8_direct_rows_count(&g, hp))
            mk_conv_s8_direct_widen(path, &g, image, -7, 0, hp, &rows)
            var conv = [Int8](repeating: 0, count: h * w * n)
            let pooledCount = window.oh * window.ow
            let q0 = pooledCount / 3
            var fused = [Int8](repeating: 99, count: (pooledCount - q0) * n)
            bias.withUnsafeBufferPointer { b in
                m.withUnsafeBufferPointer { mv in
                    shifts.withUnsafeBufferPointer { sv in
                        var r = mk_requantization(bias: b.baseAddress, multiplier: mv.baseAddress, shift: sv.baseAddress,
                                                  output_zero_point: -20, minimum: -128, maximum: 127)
                        mk_conv_s8_direct(path, &g, rows, 0, 0, h * w, n, packed, &r, &conv, n)
                        mk_conv_s8_direct_maxpool(path, &g, &window, rows, 0, q0, pooledCount, n, packed, &r, &fused, n)
                    }
                }
            }
            var expected = [Int8](repeating: 0, count: pooledCount * n)
            conv.withUnsafeBufferPointer { x in
                expected.withUnsafeMutableBufferPointer { y in
                    Int8ReferenceKernels.maxPool2D(
                        input: Int8View(x.baseAddress!, [1, h, w, n], scale: 1, zeroPoint: 0),
                        attributes: Pool2DAttributes(kernel: (p[0], p[1]), strides: (p[2], p[3])),
                        output: MutableInt8View(y.baseAddress!, [1, window.oh, window.ow, n], scale: 1, zeroPoint: 0))
                }
            }
            #expect(Array(expected[(q0 * n)...]) == fused, "path \(path)")
        }
    }

    /// A small CNN whose convolutions all run direct (a 1-channel first layer with its max pooling
    /// fused, padding, a dilated one, a stride-2 one with more channels than pixels, which splits by
    /// columns) equals the reference kernels at 1, 2 and 3 threads.
    @Test func directSessionsAgreeWithTheReference() throws {
        var b = Int8GraphBuilder(input: [2, 20, 20, 1], scale: 0.01, zeroPoint: -128)
        b.add("c1", .conv2D(Conv2DAttributes(activation: .relu)), weight: [24, 3, 3, 1],
              output: QuantizationParameters(scale: 0.02, zeroPoint: -128))
        b.add("p1", .maxPool2D(Pool2DAttributes(kernel: (2, 2))))
        b.add("c2", .conv2D(Conv2DAttributes(dilations: (2, 2), padding: .same)), weight: [33, 3, 3, 24],
              output: QuantizationParameters(scale: 0.1, zeroPoint: 3))
        b.add("c3", .conv2D(Conv2DAttributes(strides: (2, 2), activation: .relu)), weight: [70, 3, 3, 33],
              output: QuantizationParameters(scale: 0.2, zeroPoint: -128))
        b.graph.outputs = ["c3"]
        var random = Int8Random(seed: 5)
        let input = Tensor(shape: [2, 20, 20, 1], floats: random.floats(2 * 400))
        // c1 takes over p1 (2x2 windows, c1's output read by p1 alone), on every kernel path.
        try expectSessionsEqualTheReference(b.graph, input: input,
                                            kernels: ["quantize", "int8 direct conv+max pool", "int8 direct conv",
                                                      "int8 direct conv"])
    }

    /// The check of KernelPathTests (1-3 threads, planned kernels, equal to the reference), on an
    /// int8 reference output that is not degenerate.
    func expectSessionsEqualTheReference(_ graph: Graph, input: Tensor, kernels: [String]) throws {
        let reference = try expectEveryThreadCountMatchesTheReference(graph, input, kernels: kernels)
        guard case .int8(let codes) = reference.storage else {
            Issue.record("the int8 output is not int8")
            return
        }
        #expect(Set(codes).count > 20, "degenerate reference output")
    }

    /// Spatial convolutions too big to widen whole run direct a block of output rows at a time
    /// (a 3-channel stride-2 first layer, a padded dilated one below AVX-512); the thread splits
    /// start rows inside blocks. They equal the reference at 1, 2 and 3 threads; a 1x1 one keeps the GEMM.
    @Test func blockedDirectSessionsAgreeWithTheReference() throws {
        let shape = [2, 121, 110, 3]
        var b = Int8GraphBuilder(input: shape, scale: 0.01, zeroPoint: -3)
        b.add("c1", .conv2D(Conv2DAttributes(strides: (2, 2), padding: .same, activation: .relu6)), weight: [16, 3, 3, 3],
              output: QuantizationParameters(scale: 0.02, zeroPoint: -128))
        b.add("c2", .conv2D(Conv2DAttributes(dilations: (2, 2), padding: .same)), weight: [20, 3, 3, 16],
              output: QuantizationParameters(scale: 0.1, zeroPoint: 3))
        b.add("c3", .conv2D(Conv2DAttributes()), weight: [24, 1, 1, 20],
              output: QuantizationParameters(scale: 0.2, zeroPoint: -10))
        b.graph.outputs = ["c3"]
        // Both spatial layers take several blocks.
        let first = mk_conv_geometry(h: 121, w: 110, c: 3, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pad_top: 1,
                                     pad_left: 1, oh: 61, ow: 55)
        let second = mk_conv_geometry(h: 61, w: 55, c: 16, kh: 3, kw: 3, sh: 1, sw: 1, dh: 2, dw: 2, pad_top: 2,
                                      pad_left: 2, oh: 61, ow: 55)
        for g in [first, second] {
            #expect(!Int8GemmStep.runsDirect(g) && Int8GemmStep.directBlockRows(g) < g.oh)
        }
        // The first on every path; the second's 48-value window rows keep the GEMM on AVX-512.
        #expect(Int8GemmStep.runsDirectInBlocks(first))
        let secondKernel = Int8GemmStep.runsDirectInBlocks(second) ? "int8 direct conv" : "int8 im2col gemm"
        var random = Int8Random(seed: 11)
        let input = Tensor(shape: Shape(shape), floats: random.floats(shape.reduce(1, *)))
        try expectSessionsEqualTheReference(b.graph, input: input,
                                            kernels: ["quantize", "int8 direct conv", secondKernel, "int8 im2col gemm"])
    }
}
