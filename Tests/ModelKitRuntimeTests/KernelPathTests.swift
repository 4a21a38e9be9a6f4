import CAVX512Model
import CModelKitKernels
import ModelKitCore
@testable import ModelKitRuntime
import Testing

/// The inference C kernels on every dispatch path this CPU has (the same paths MODELKIT_KERNELS
/// selects), against the reference kernels or plain loops: int8 bit-exact, float within 1e-5.
@Suite("inference kernel paths")
struct KernelPathTests {
    static var paths: [Int32] {
        [MK_KERNELS_PORTABLE, MK_KERNELS_AVX2, MK_KERNELS_AVX512].map { Int32($0.rawValue) }
            .filter { mk_kernels_clamp($0) == $0 }
    }

    /// int8 codes over the whole range, -128 included.
    static func fullRangeCodes(_ count: Int, _ random: inout Int8Random) -> [Int8] {
        (0..<count).map { _ in Int8(truncatingIfNeeded: random.next() >> 32) }
    }

    struct PoolCase: Sendable, CustomTestStringConvertible {
        var input: [Int]
        var attributes: Pool2DAttributes
        var testDescription: String { "\(input) k\(attributes.kernelH)x\(attributes.kernelW) s\(attributes.strideH) \(attributes.padding)" }
    }

    static let poolCases: [PoolCase] = [
        PoolCase(input: [1, 26, 26, 32], attributes: Pool2DAttributes(kernel: (2, 2))),
        PoolCase(input: [2, 11, 11, 64], attributes: Pool2DAttributes(kernel: (2, 2))),
        PoolCase(input: [3, 9, 7, 13], attributes: Pool2DAttributes(kernel: (3, 3), strides: (2, 2), padding: .same)),
        PoolCase(input: [1, 8, 8, 40], attributes: Pool2DAttributes(kernel: (3, 2), strides: (1, 2),
                                                                  padding: .explicit(top: 1, left: 1, bottom: 2, right: 0))),
        PoolCase(input: [2, 5, 6, 3], attributes: Pool2DAttributes(kernel: (2, 3), strides: (3, 1))),
    ]

    static func outputShape(_ input: [Int], _ a: Pool2DAttributes) throws -> Shape {
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: Shape(input))], outputs: ["y"],
                          nodes: [Node(name: "p", operation: .maxPool2D(a), inputs: ["x"], outputs: ["y"])])
        return try graph.analyze().values["y"]!.shape
    }

    @Test(arguments: poolCases)
    func floatMaxPoolMatchesReference(_ testCase: PoolCase) throws {
        let shape = Shape(testCase.input)
        let outShape = try Self.outputShape(testCase.input, testCase.attributes)
        var random = SplitMix64(seed: UInt64(shape.elementCount!))
        var x = random.floats(shape.elementCount!)
        // Ties, NaN and -0/+0: the rules must match too.
        for index in stride(from: 0, to: x.count, by: 7) { x[index] = 0.25 }
        for index in stride(from: 3, to: x.count, by: 23) { x[index] = .nan }
        for index in stride(from: 5, to: x.count, by: 11) { x[index] = index % 2 == 0 ? -0.0 : 0.0 }
        let expected = runReference(.maxPool2D(testCase.attributes), [HostTensor(shape, x)], outputShape: outShape)
        for path in Self.paths {
            var y = [Float](repeating: .nan, count: outShape.elementCount!)
            let step = x.withUnsafeBufferPointer { xs in
                y.withUnsafeMutableBufferPointer { ys in
                    MaxPoolStep(input: xs.baseAddress!, inputShape: shape, output: ys.baseAddress!, outputShape: outShape,
                                attributes: testCase.attributes, isInt8: false)
                }
            }
            x.withUnsafeBufferPointer { xs in
                y.withUnsafeMutableBufferPointer { ys in
                    withUnsafePointer(to: step.geometry) { mk_maxpool_f32_path(path, $0, xs.baseAddress, ys.baseAddress) }
                }
            }
            #expect(y.map(\.bitPattern) == expected.map(\.bitPattern), "path \(path)")
        }
    }

    @Test(arguments: poolCases)
    func int8MaxPoolMatchesReference(_ testCase: PoolCase) throws {
        let shape = Shape(testCase.input)
        let outShape = try Self.outputShape(testCase.input, testCase.attributes)
        var random = Int8Random(seed: UInt64(shape.elementCount!))
        let x = Self.fullRangeCodes(shape.elementCount!, &random)
        var expected = [Int8](repeating: 0, count: outShape.elementCount!)
        x.withUnsafeBufferPointer { xs in
            expected.withUnsafeMutableBufferPointer { ys in
                Int8ReferenceKernels.maxPool2D(input: Int8View(xs.baseAddress!, shape, scale: 1, zeroPoint: 0),
                                               attributes: testCase.attributes,
                                               output: MutableInt8View(ys.baseAddress!, outShape, scale: 1, zeroPoint: 0))
            }
        }
        for path in Self.paths {
            var y = [Int8](repeating: 99, count: outShape.elementCount!)
            x.withUnsafeBufferPointer { xs in
                y.withUnsafeMutableBufferPointer { ys in
                    let step = MaxPoolStep(input: xs.baseAddress!, inputShape: shape, output: ys.baseAddress!,
                                           outputShape: outShape, attributes: testCase.attributes, isInt8: true)
                    withUnsafePointer(to: step.geometry) { mk_maxpool_i8_path(path, $0, xs.baseAddress, ys.baseAddress) }
                }
            }
            #expect(y == expected, "path \(path)")
        }
    }

    /// Average pooling with and without padded cells in the divisor, and global average pooling,
    /// with zero points that make the sums and the rounding (ties, negatives, clamping) matter.
    @Test(arguments: poolCases, [false, true])
    func int8AveragePoolIsExact(_ testCase: PoolCase, countIncludePad: Bool) throws {
        let shape = Shape(testCase.input)
        var attributes = testCase.attributes
        attributes.countIncludePad = countIncludePad
        let outShape = try Self.outputShape(testCase.input, attributes)
        var random = Int8Random(seed: UInt64(shape.elementCount!) + (countIncludePad ? 1 : 0))
        let x = Self.fullRangeCodes(shape.elementCount!, &random)
        let globalShape = Shape([shape[0], 1, 1, shape[3]])
        func reference(global: Bool) -> [Int8] {
            var y = [Int8](repeating: 0, count: (global ? globalShape : outShape).elementCount!)
            x.withUnsafeBufferPointer { xs in
                y.withUnsafeMutableBufferPointer { ys in
                    let input = Int8View(xs.baseAddress!, shape, scale: 1, zeroPoint: -9)
                    let output = MutableInt8View(ys.baseAddress!, global ? globalShape : outShape, scale: 1, zeroPoint: 5)
                    if global {
                        Int8ReferenceKernels.globalAveragePool(input: input, output: output)
                    } else {
                        Int8ReferenceKernels.averagePool2D(input: input, attributes: attributes, output: output)
                    }
                }
            }
            return y
        }
        for global in [false, true] {
            let expected = reference(global: global)
            #expect(Set(expected).count > min(expected.count / 4, 8), "degenerate reference output")
            for path in Self.paths {
                var y = [Int8](repeating: 99, count: expected.count)
                x.withUnsafeBufferPointer { xs in
                    y.withUnsafeMutableBufferPointer { ys in
                        Int8AveragePool.run(input: Int8View(xs.baseAddress!, shape, scale: 1, zeroPoint: -9),
                                            attributes: global ? nil : attributes,
                                            output: MutableInt8View(ys.baseAddress!, global ? globalShape : outShape,
                                                                    scale: 1, zeroPoint: 5),
                                            path: path)
                    }
                }
                #expect(y == expected, "path \(path), global \(global)")
            }
        }
    }

    /// int8 Concat by block copies against the reference's element copies, on every axis.
    @Test(arguments: [0, 1, 2, 3, -1])
    func int8ConcatMatchesReference(axis: Int) {
        var random = Int8Random(seed: UInt64(axis + 10))
        let base = [2, 3, 4, 5]
        let resolved = axis < 0 ? axis + 4 : axis
        let shapes = [1, 3, 2].map { extent -> Shape in
            var dims = base
            dims[resolved] = extent
            return Shape(dims)
        }
        var outDims = base
        outDims[resolved] = 6
        let outShape = Shape(outDims)
        let values = shapes.map { Self.fullRangeCodes($0.elementCount!, &random) }
        func concatenate(_ kernel: ([Int8View], MutableInt8View) -> Void) -> [Int8] {
            var y = [Int8](repeating: 99, count: outShape.elementCount!)
            let buffers = values.map { codes -> UnsafeMutableBufferPointer<Int8> in
                let buffer = UnsafeMutableBufferPointer<Int8>.allocate(capacity: codes.count)
                _ = buffer.initialize(from: codes)
                return buffer
            }
            defer { buffers.forEach { $0.deallocate() } }
            let views = zip(buffers, shapes).map { Int8View(UnsafePointer($0.baseAddress!), $1, scale: 1, zeroPoint: 0) }
            y.withUnsafeMutableBufferPointer { kernel(views, MutableInt8View($0.baseAddress!, outShape, scale: 1, zeroPoint: 0)) }
            return y
        }
        let expected = concatenate { Int8ReferenceKernels.concat(inputs: $0, axis: axis, output: $1) }
        #expect(!expected.contains(99) || values.joined().contains(99))
        #expect(concatenate { Int8Concat.run(inputs: $0, axis: axis, output: $1) } == expected)
    }

    /// The packed float GEMM with its bias+ReLU epilogue against a plain triple loop. The shapes
    /// leave every remainder of rows after whole 6-row tiles (short tiles: 49, 50, 3, 16, 5 rows),
    /// several K blocks, and a partial column panel (AVX2: masked edge tiles of 1-8 columns, which
    /// compute 8, and of 9-15, over one or several K blocks: 10, 29 and 24 columns). K = 1024 rows
    /// are read in place over at most 4 panels (40 columns) and packed over more (80).
    @Test(arguments: [(1, 10, 64), (121, 64, 288), (7, 33, 17), (13, 16, 700), (6, 1, 1), (49, 48, 700),
                      (50, 16, 40), (3, 16, 9), (16, 40, 330), (5, 33, 600), (11, 29, 650), (25, 24, 144),
                      (13, 40, 1024), (7, 80, 1024)])
    func packedFloatGemmMatchesLoops(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var random = SplitMix64(seed: UInt64(m * 10_000 + n * 100 + k))
        let a = random.floats(m * k), b = random.floats(n * k), bias = random.floats(n)
        // No clamp, ReLU through the old entry point, ReLU6-like and a clamp with a negative floor.
        let clamps: [(name: String, lo: Float, hi: Float)?] = [nil, ("relu", 0, .infinity), ("clip", 0, 0.5),
                                                               ("clip", -0.25, 0.75)]
        for clamp in clamps {
            // Exact sums, and the sum of |terms|: float rounding error scales with the latter.
            var expected = [Float](repeating: 0, count: m * n)
            var magnitude = [Float](repeating: 0, count: m * n)
            for i in 0..<m {
                for j in 0..<n {
                    var sum = Double(bias[j]), size = abs(Double(bias[j]))
                    for p in 0..<k {
                        sum += Double(a[i * k + p]) * Double(b[j * k + p])
                        size += abs(Double(a[i * k + p]) * Double(b[j * k + p]))
                    }
                    expected[i * n + j] = clamp.map { min(max(Float(sum), $0.lo), $0.hi) } ?? Float(sum)
                    magnitude[i * n + j] = Float(size)
                }
            }
            for path in Self.paths {
                var packed = [Float](repeating: .nan, count: mk_sgemm_packed_b_count(path, n, k))
                mk_sgemm_pack_b(path, n, k, b, k, &packed)
                var c = [Float](repeating: .nan, count: m * n)
                if let clamp, clamp.name == "clip" {
                    mk_sgemm_packed_clamp(path, m, n, k, a, k, packed, &c, n, bias, 1, clamp.lo, clamp.hi)
                } else {
                    mk_sgemm_packed(path, m, n, k, a, k, packed, &c, n, bias, clamp == nil ? 0 : 1)
                }
                let worst = c.indices.map { abs(c[$0] - expected[$0]) / max(1, magnitude[$0]) }.max() ?? 0
                #expect(worst <= 1e-5, "path \(path) clamp \(String(describing: clamp)): \(worst)")
            }
        }
    }

    /// A row's result does not depend on which row tile computes it (full or short, or which
    /// remainder): the GEMM over rows first..<m gives exactly the rows of the whole GEMM, as thread
    /// splits by rows need for equal results at every thread count.
    @Test(arguments: [(49, 48, 700), (16, 40, 330), (13, 16, 17)])
    func packedFloatGemmRowsAgreeExactlyWhateverTheirTile(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var random = SplitMix64(seed: UInt64(m * 7 + n * 3 + k))
        let a = random.floats(m * k), b = random.floats(n * k), bias = random.floats(n)
        for path in Self.paths {
            var packed = [Float](repeating: .nan, count: mk_sgemm_packed_b_count(path, n, k))
            mk_sgemm_pack_b(path, n, k, b, k, &packed)
            var whole = [Float](repeating: .nan, count: m * n)
            mk_sgemm_packed_clamp(path, m, n, k, a, k, packed, &whole, n, bias, 1, -0.5, .infinity)
            for first in 1...5 {
                var part = [Float](repeating: .nan, count: (m - first) * n)
                a.withUnsafeBufferPointer { rows in
                    mk_sgemm_packed_clamp(path, m - first, n, k, rows.baseAddress! + first * k, k, packed, &part, n,
                                          bias, 1, -0.5, .infinity)
                }
                let differing = zip(part, whole[(first * n)...]).filter { $0.bitPattern != $1.bitPattern }.count
                #expect(differing == 0, "path \(path), rows from \(first): \(differing) values differ")
            }
        }
    }

    /// im2col with widening (the int8 GEMM's left matrix) against a plain loop, bit-exact on every
    /// path: interior rows, padded edges, strides, dilations, 1 to 40 channels, row ranges that
    /// start mid-image, the zero tail up to an even depth, and unpadded stride-1 1x1 windows with an
    /// even depth (one widening run over the pixels).
    @Test(arguments: [
        [28, 28, 1, 3, 3, 1, 1, 1, 1, 0], [13, 13, 32, 3, 3, 1, 1, 1, 1, 0], [5, 5, 64, 3, 3, 1, 1, 1, 1, 0],
        [9, 11, 17, 3, 3, 2, 2, 1, 1, 1], [10, 10, 40, 3, 2, 1, 2, 2, 2, 2], [7, 6, 16, 5, 5, 1, 1, 1, 1, 2],
        [8, 9, 3, 1, 1, 1, 1, 1, 1, 0], [7, 9, 24, 1, 1, 1, 1, 1, 1, 0], [6, 5, 2, 1, 1, 1, 1, 1, 1, 0],
        [9, 9, 8, 1, 1, 2, 2, 1, 1, 0],
    ])
    func im2colWidenIsExact(geometry: [Int]) {
        let (h, w, c, kh, kw, sh, sw, dh, dw, pad) = (geometry[0], geometry[1], geometry[2], geometry[3], geometry[4],
                                                      geometry[5], geometry[6], geometry[7], geometry[8], geometry[9])
        let oh = (h + 2 * pad - ((kh - 1) * dh + 1)) / sh + 1, ow = (w + 2 * pad - ((kw - 1) * dw + 1)) / sw + 1
        var random = Int8Random(seed: UInt64(h * 1000 + c * 10 + kh))
        let image = Self.fullRangeCodes(h * w * c, &random)
        let zeroPoint: Int32 = Int32(random.next() % 256) - 128
        let depth = kh * kw * c, ldc = depth + depth % 2
        let (p0, p1) = (oh * ow / 3, oh * ow)
        var expected = [Int16](repeating: 0, count: (p1 - p0) * ldc)
        for p in p0..<p1 {
            let (oy, ox) = (p / ow, p % ow)
            for ky in 0..<kh {
                for kx in 0..<kw {
                    let (iy, ix) = (oy * sh - pad + ky * dh, ox * sw - pad + kx * dw)
                    guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                    for channel in 0..<c {
                        expected[(p - p0) * ldc + (ky * kw + kx) * c + channel] = Int16(Int32(image[(iy * w + ix) * c + channel]) - zeroPoint)
                    }
                }
            }
        }
        var g = mk_conv_geometry(h: h, w: w, c: c, kh: kh, kw: kw, sh: sh, sw: sw, dh: dh, dw: dw, pad_top: pad,
                                 pad_left: pad, oh: oh, ow: ow)
        for path in Self.paths {
            var columns = [Int16](repeating: 99, count: (p1 - p0) * ldc)
            mk_im2col_i8_widen_path(path, &g, image, p0, p1, zeroPoint, &columns, ldc)
            #expect(columns == expected, "path \(path)")
        }
    }

    /// The packed int8 GEMM with fused requantization against the Swift reference arithmetic,
    /// on multipliers below and above one (a left shift takes the scalar requantization): every
    /// path this CPU has, and the AVX-512 VNNI path's source on scalar models of its intrinsics
    /// (its 12-row x 32-column tiles, partial panels and masked tails) on any CPU.
    @Test(arguments: [(1, 10, 64), (121, 64, 288), (7, 33, 9), (13, 17, 577), (6, 1, 1), (676, 32, 9),
                      (25, 40, 31), (12, 32, 2), (37, 80, 100)])
    func packedInt8GemmIsExact(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var random = Int8Random(seed: UInt64(m * 10_000 + n * 100 + k))
        let codes = Self.fullRangeCodes(m * k, &random)
        let weights = random.codes(n * k)
        let bias = (0..<n).map { _ in Int32(random.next() % 20001) - 10000 }
        let inputZeroPoint: Int32 = -7
        for scale: Double in [0.0004, 0.03, 3] {
            let multipliers = (0..<n).map { _ in QuantizedMultiplier(scale * (0.5 + Double(random.next() % 1000) / 1000)) }
            let (zeroPoint, minimum, maximum): (Int32, Int32, Int32) = (5, -3, 120)
            var expected = [Int8](repeating: 0, count: m * n)
            for i in 0..<m {
                for j in 0..<n {
                    var acc = bias[j]
                    for p in 0..<k { acc &+= (Int32(codes[i * k + p]) - inputZeroPoint) * Int32(weights[j * k + p]) }
                    expected[i * n + j] = Int8(min(max(multipliers[j].apply(acc) &+ zeroPoint, minimum), maximum))
                }
            }
            let pairs = mk_igemm_depth_pairs(k)
            var rows = [Int16](repeating: 99, count: m * 2 * pairs)
            mk_widen_rows_i8(m, k, codes, k, inputZeroPoint, &rows, 2 * pairs)
            var packed = [Int16](repeating: 99, count: mk_igemm_packed_b_count(n, k))
            mk_igemm_pack_b(n, k, weights, k, &packed)
            let multiplierValues = multipliers.map(\.multiplier), shifts = multipliers.map(\.shift)
            /// The m x n codes `gemm` writes given the requantization parameters.
            func output(_ gemm: (UnsafePointer<mk_requantization>, UnsafeMutablePointer<Int8>) -> Void) -> [Int8] {
                var c = [Int8](repeating: 99, count: m * n)
                bias.withUnsafeBufferPointer { b in
                    multiplierValues.withUnsafeBufferPointer { mv in
                        shifts.withUnsafeBufferPointer { sv in
                            var r = mk_requantization(bias: b.baseAddress, multiplier: mv.baseAddress, shift: sv.baseAddress,
                                                      output_zero_point: zeroPoint, minimum: minimum, maximum: maximum)
                            c.withUnsafeMutableBufferPointer { gemm(&r, $0.baseAddress!) }
                        }
                    }
                }
                return c
            }
            for path in Self.paths {
                let c = output { mk_igemm_requantize_path(path, m, n, k, rows, 2 * pairs, packed, $0, $1, n) }
                #expect(c == expected, "path \(path) scale \(scale)")
            }
            // The VNNI path serves right shifts only (multipliers below one), like the AVX2 path.
            if shifts.allSatisfy({ $0 <= 0 }) {
                let c = output { mk_igemm_requantize_vnni_model(m, n, k, rows, 2 * pairs, packed, $0, $1, n) }
                #expect(c == expected, "AVX-512 VNNI model, scale \(scale)")
            }
        }
    }

    /// An int8 Dense at batch 1 splits by 16-column panels (the last one partial here), and at
    /// batch 3 stays whole: both bit-exact with the reference at every thread count.
    @Test(arguments: [1, 3])
    func int8DenseColumnSplitIsExact(batch: Int) throws {
        var b = Int8GraphBuilder(input: [batch, 200], scale: 0.03, zeroPoint: 5)
        b.add("d", .dense(activation: .relu), weight: [100, 200], output: QuantizationParameters(scale: 0.15, zeroPoint: -20))
        b.graph.outputs = ["d"]
        var random = Int8Random(seed: 11)
        let input = Tensor(shape: [batch, 200], floats: random.floats(batch * 200, scale: 3))
        let reference = try Session(model: Model(graph: b.graph), options: SessionOptions(kernels: .reference)).run(input)
        guard case .int8(let codes) = reference.storage else {
            Issue.record("the int8 Dense output is not int8")
            return
        }
        #expect(Set(codes).count > 20, "degenerate reference output")
        for threads in [1, 2, 3] {
            let y = try Session(model: Model(graph: b.graph), options: SessionOptions.splittingEveryLayer(threads: threads)).run(input)
            #expect(y.storage == reference.storage, "\(threads) threads")
        }
    }

    /// int8 outputs do not depend on the thread count (row splits are exact).
    @Test func int8SessionsAgreeAtEveryThreadCount() throws {
        var b = Int8GraphBuilder(input: [2, 14, 14, 3], scale: 0.02, zeroPoint: -3)
        b.add("c1", .conv2D(Conv2DAttributes(padding: .same, activation: .relu)), weight: [16, 3, 3, 3],
              output: QuantizationParameters(scale: 0.05, zeroPoint: -128))
        b.add("c2", .conv2D(Conv2DAttributes(strides: (2, 2))), weight: [24, 3, 3, 16],
              output: QuantizationParameters(scale: 0.1, zeroPoint: 4))
        b.add("p", .maxPool2D(Pool2DAttributes(kernel: (2, 2))))
        b.add("f", .flatten(axis: 1))
        b.add("d", .dense(activation: .none), weight: [10, 216], output: QuantizationParameters(scale: 0.2, zeroPoint: 1))
        b.graph.outputs = ["d"]
        var random = Int8Random(seed: 3)
        let input = Tensor(shape: [2, 14, 14, 3], floats: random.floats(2 * 14 * 14 * 3))
        try expectEveryThreadCountMatchesTheReference(b.graph, input)
    }

    /// The same where the convolutions have fewer rows (over the batch) than output channels, so
    /// they split by output columns (a 3x3 one whose 81 rows per image take two row blocks and a
    /// stride-2 one, over two images, then a pointwise one with an edge panel).
    @Test func int8ColumnSplitSessionsAgreeWithTheReference() throws {
        var b = Int8GraphBuilder(input: [2, 9, 9, 8], scale: 0.03, zeroPoint: 5)
        b.add("c1", .conv2D(Conv2DAttributes(padding: .same, activation: .relu)), weight: [176, 3, 3, 8],
              output: QuantizationParameters(scale: 0.05, zeroPoint: -128))
        b.add("c2", .conv2D(Conv2DAttributes(strides: (2, 2), padding: .same)), weight: [56, 3, 3, 176],
              output: QuantizationParameters(scale: 0.1, zeroPoint: 4))
        b.add("c3", .conv2D(Conv2DAttributes()), weight: [67, 1, 1, 56],
              output: QuantizationParameters(scale: 0.2, zeroPoint: -2))
        b.graph.outputs = ["c3"]
        var random = Int8Random(seed: 11)
        let input = Tensor(shape: [2, 9, 9, 8], floats: random.floats(2 * 9 * 9 * 8))
        try expectEveryThreadCountMatchesTheReference(b.graph, input)
    }
}

extension KernelPathTests {
    /// Shallow pointwise convolutions on images too big to run direct, whose im2col blocks are
    /// longer than 60 rows (`blockRows`): 2 images of 48x48 = 2304 rows each, 16 and 24 channels
    /// deep, so 240-row blocks end inside an image, split by rows across threads; then a stride-16
    /// one (9 pixels per image, 40 channels) that splits by columns over one block per image.
    @Test func int8LongBlockGemmSessionsAgreeWithTheReference() throws {
        var b = Int8GraphBuilder(input: [2, 48, 48, 16], scale: 0.03, zeroPoint: -7)
        b.add("c1", .conv2D(Conv2DAttributes(activation: .relu)), weight: [24, 1, 1, 16],
              output: QuantizationParameters(scale: 0.05, zeroPoint: -128))
        b.add("c2", .conv2D(Conv2DAttributes()), weight: [33, 1, 1, 24],
              output: QuantizationParameters(scale: 0.1, zeroPoint: 3))
        b.add("c3", .conv2D(Conv2DAttributes(strides: (16, 16))), weight: [40, 1, 1, 33],
              output: QuantizationParameters(scale: 0.2, zeroPoint: -2))
        b.graph.outputs = ["c3"]
        var random = Int8Random(seed: 17)
        let input = Tensor(shape: [2, 48, 48, 16], floats: random.floats(2 * 48 * 48 * 16))
        try expectEveryThreadCountMatchesTheReference(b.graph, input,
                                                      kernels: ["quantize", "int8 im2col gemm", "int8 im2col gemm",
                                                                "int8 im2col gemm"])
    }
}

/// `graph` run split at every layer on 1, 2 and 3 threads equals the reference kernels' output
/// exactly and, when `kernels` is given, plans those step kernels. Returns the reference output.
@discardableResult
func expectEveryThreadCountMatchesTheReference(_ graph: Graph, _ input: Tensor, kernels: [String]? = nil) throws -> Tensor {
    let reference = try Session(model: Model(graph: graph), options: SessionOptions(kernels: .reference)).run(input)
    for threads in [1, 2, 3] {
        let session = try Session(model: Model(graph: graph), options: SessionOptions.splittingEveryLayer(threads: threads))
        if let kernels { #expect(session.profile.map(\.kernel) == kernels, "\(threads) threads") }
        let y = try session.run(input)
        #expect(y.storage == reference.storage, "\(threads) threads")
    }
    return reference
}
