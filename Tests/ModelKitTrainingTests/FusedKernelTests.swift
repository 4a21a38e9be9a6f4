import CModelKitKernels
import Testing
@testable import ModelKitTraining

/// The fused GEMM epilogue (bias + ReLU), the fused ReLU backward / bias gradient, the C Adam
/// update, and Network's ReLU folding, each against a plain reference.
@Suite struct FusedKernelTests {
    func randoms(_ count: Int, _ rng: inout RandomGenerator) -> [Float] {
        (0..<count).map { _ in rng.nextFloat(in: -1, 1) }
    }

    @Test(arguments: KernelPath.allCases)
    func biasReLUEpilogueMatchesNaive(path: KernelPath) {
        guard path.isSupported else { return }
        var rng = RandomGenerator(seed: 41)
        // Edge tiles in both directions, several K blocks (k > 320), and a zero-depth product.
        let shapes = [(7, 5, 3), (13, 33, 288), (50, 70, 700), (6, 16, 1), (3, 4, 0), (517, 64, 288), (64, 290, 900)]
        for (m, n, k) in shapes {
            for (transA, transB) in [(false, true), (true, false), (false, false)] {
                let a = randoms(m * k, &rng), b = randoms(k * n, &rng), bias = randoms(n, &rng)
                let lda = transA ? m : k, ldb = transB ? k : n
                let plain = naiveGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda,
                                      b: b, ldb: ldb, beta: 0, c: [Float](repeating: 0, count: m * n), ldc: n)
                for relu in [false, true] {
                    for threads in [1, 2] {
                        var c = [Float](repeating: .nan, count: m * n)
                        a.withUnsafeBufferPointer { pa in
                            b.withUnsafeBufferPointer { pb in
                                bias.withUnsafeBufferPointer { pbias in
                                    c.withUnsafeMutableBufferPointer { pc in
                                        Gemm.multiplyBiasReLU(transA: transA, transB: transB, m: m, n: n, k: k,
                                                              a: pa.baseAddress!, lda: lda, b: pb.baseAddress!,
                                                              ldb: ldb, c: pc.baseAddress!, ldc: n,
                                                              bias: pbias.baseAddress, relu: relu, threads: threads,
                                                              path: path)
                                    }
                                }
                            }
                        }
                        var worst: Float = 0
                        for i in 0..<m {
                            for j in 0..<n {
                                let z = plain[i * n + j] + bias[j]
                                let expected = relu ? max(z, 0) : z
                                worst = max(worst, abs(c[i * n + j] - expected))
                            }
                        }
                        #expect(worst <= 1e-4 * Float(max(k, 1)).squareRoot(),
                                "\(m)x\(n)x\(k) tA=\(transA) tB=\(transB) relu=\(relu) threads=\(threads)")
                    }
                }
            }
        }
    }

    @Test func reluBackwardAndColumnSumsMatchScalarLoops() {
        var rng = RandomGenerator(seed: 42)
        for (rows, cols) in [(1, 1), (63, 5), (130, 32), (3, 1100)] {
            let dy = randoms(rows * cols, &rng), out = randoms(rows * cols, &rng).map { max($0, 0) }
            var masked: [Float] = []
            let sums = ColumnSums.reluMasked(dy, output: out, into: &masked, columns: cols, sums: true)!
            let expectedMask = zip(dy, out).map { $1 > 0 ? $0 : 0 }
            #expect(masked == expectedMask)
            // Same order as the documented algorithm: float blocks of 64 rows, blocks in double.
            var expected = [Double](repeating: 0, count: cols)
            var start = 0
            while start < rows {
                var block = [Float](repeating: 0, count: cols)
                for r in start..<min(start + 64, rows) { for j in 0..<cols { block[j] += expectedMask[r * cols + j] } }
                for j in 0..<cols { expected[j] += Double(block[j]) }
                start += 64
            }
            #expect(sums == expected.map { Float($0) })
            #expect(ColumnSums.of(expectedMask, columns: cols) == sums)
            var maskOnly: [Float] = []
            #expect(ColumnSums.reluMasked(dy, output: out, into: &maskOnly, columns: cols, sums: false) == nil)
            #expect(maskOnly == expectedMask)
        }
    }

    @Test func adamKernelMatchesScalarFormulaBitForBit() {
        var rng = RandomGenerator(seed: 43)
        let count = 1003  // Not a multiple of any vector width.
        var w = randoms(count, &rng), m = randoms(count, &rng).map { $0 * 0.1 }
        var v = randoms(count, &rng).map { $0 * $0 * 0.01 }
        let g = randoms(count, &rng)
        let (clip, l2, decay, b1, b2, alpha, eps): (Float, Float, Float, Float, Float, Float, Float) =
            (0.7, 1e-4, 1e-3, 0.1, 0.001, 3e-4, 1e-7)
        var (we, me, ve) = (w, m, v)
        for i in 0..<count {
            we[i] -= decay * we[i]
            let grad = g[i] * clip + l2 * we[i]
            me[i] += (grad - me[i]) * b1
            ve[i] += (grad * grad - ve[i]) * b2
            we[i] -= alpha * me[i] / (ve[i].squareRoot() + eps)
        }
        mk_adam_update(count, &w, g, &m, &v, clip, l2, decay, b1, b2, alpha, eps)
        #expect(w == we && m == me && v == ve)
    }

    func smallCNN(seed: UInt64) throws -> Network {
        var rng = RandomGenerator(seed: seed)
        let network = Network(inputShape: [6, 6, 2], rng: rng)
        try network.add(Conv2D(name: "c1", inChannels: 2, outChannels: 4, kernel: (3, 3), rng: &rng))
        try network.add(ReLU(name: "r1"))
        try network.add(Conv2D(name: "c2", inChannels: 4, outChannels: 3, kernel: (1, 1), useBias: false, rng: &rng))
        try network.add(ReLU(name: "r2"))
        try network.add(Flatten(name: "f"))
        try network.add(Dense(name: "d1", inFeatures: 48, outFeatures: 5, rng: &rng))
        try network.add(ReLU(name: "r3"))
        try network.add(Dense(name: "d2", inFeatures: 5, outFeatures: 3, rng: &rng))
        // Non-zero biases so the bias epilogue matters.
        for parameter in network.parameters where parameter.name.hasSuffix(".bias") {
            parameter.value = randoms(parameter.count, &rng).map { $0 * 0.3 }
        }
        return network
    }

    @Test func networkFoldsReLUsAndMatchesLayerByLayer() throws {
        let network = try smallCNN(seed: 44)
        let plan = network.reluFusion()
        #expect(plan.producers == [true, false, true, false, false, true, false, false])
        #expect(plan.absorbed == [false, true, false, true, false, false, true, false])
        try expectFoldedMatchesLayerByLayer(network, GradientCheck.input([3, 6, 6, 2], seed: 45), labels: [0, 2, 1])
    }

    /// The seed CNN: its first convolution takes the direct single-channel kernels, the others
    /// im2col split over samples, all with folded ReLUs.
    @Test func seedCNNFoldedMatchesLayerByLayer() throws {
        let network = try Network.seedCNN(seed: 49, inputShape: [20, 20, 1], classes: 4)
        for parameter in network.parameters where parameter.name.hasSuffix(".bias") {
            var rng = RandomGenerator(seed: 51)
            parameter.value = randoms(parameter.count, &rng).map { $0 * 0.1 }
        }
        var rng = RandomGenerator(seed: 52)
        let x = Batch(shape: [12, 20, 20, 1], values: (0..<(12 * 400)).map { _ in rng.nextFloat() })
        try expectFoldedMatchesLayerByLayer(network, x, labels: (0..<12).map { Int32($0 % 4) })
    }

    func expectFoldedMatchesLayerByLayer(_ network: Network, _ x: Batch, labels: [Int32]) throws {
        let fused = try network.forward(x, training: true)
        let result = try SoftmaxCrossEntropy.compute(logits: fused, labels: labels)
        try network.backward(result.gradient)
        let fusedGradients = network.parameters.map(\.gradient)

        // The same layers run one by one (no folding): identical outputs and gradients.
        var activations = [x]
        for node in network.nodes {
            activations.append(try node.layer.forward([activations.last!], training: true, rng: &network.rng))
        }
        #expect(activations.last! == fused)
        var gradient = result.gradient
        for index in stride(from: network.nodes.count - 1, through: 0, by: -1) {
            let grads = try network.nodes[index].layer.backward(gradient, needInputGradients: index > 0)
            if index > 0 { gradient = grads[0] }
        }
        #expect(network.parameters.map(\.gradient) == fusedGradients)
    }

    @Test func reluReadTwiceIsNotFolded() throws {
        var rng = RandomGenerator(seed: 46)
        let network = Network(inputShape: [4], rng: rng)
        let d = try network.add(Dense(name: "d", inFeatures: 4, outFeatures: 4, rng: &rng))
        try network.add(ReLU(name: "r"))
        try network.add(Add(name: "a"), inputs: [d, d + 1])
        #expect(network.reluFusion().producers == [false, false, false])
    }

    /// A small step: with three ReLUs, a 1e-2 step crosses kinks (the analytic gradient is exact,
    /// the difference quotient is not).
    @Test func foldedNetworkGradientsMatchFiniteDifferences() throws {
        let network = try smallCNN(seed: 47)
        let x = GradientCheck.input([2, 6, 6, 2], seed: 48)
        let labels: [Int32] = [1, 2]
        func loss() throws -> Double {
            Double(try SoftmaxCrossEntropy.compute(logits: network.forward(x, training: true), labels: labels).loss)
        }
        let result = try SoftmaxCrossEntropy.compute(logits: network.forward(x, training: true), labels: labels)
        try network.backward(result.gradient)
        for parameter in network.trainableParameters {
            let analytic = parameter.gradient
            let numeric = try GradientCheck.numericGradient(of: parameter, step: 1e-3, loss: loss)
            #expect(GradientCheck.relativeError(analytic, numeric) < 2e-2, "\(parameter.name)")
        }
    }
}

/// Conv2D large enough that forward and backward split the batch across threads (per-part weight
/// gradients summed in part order), against direct loops in Double.
@Suite struct SplitConvolutionTests {
    /// (n, h, w, c, o, same padding): im2col path split over samples, and the direct
    /// single-channel kernels (AVX2 for 32 outputs, portable otherwise; split and unsplit).
    @Test(arguments: [(5, 12, 11, 16, 32, true), (9, 28, 28, 1, 32, false), (3, 9, 8, 1, 5, false),
                      (40, 28, 28, 1, 32, false)])
    func splitPassesMatchDirectLoops(_ item: (Int, Int, Int, Int, Int, Bool)) throws {
        var rng = RandomGenerator(seed: 50)
        let (n, h, w, c, o, same) = item
        let conv = try Conv2D(name: "c", inChannels: c, outChannels: o, kernel: (3, 3),
                              padding: same ? .same : .valid, rng: &rng)
        conv.bias!.value = (0..<o).map { _ in rng.nextFloat(in: -0.5, 0.5) }
        let x = Batch(shape: [n, h, w, c], values: (0..<(n * h * w * c)).map { _ in rng.nextFloat(in: -1, 1) })
        let y = try conv.forward(x, training: true)
        let (oh, ow, pad) = same ? (h, w, 1) : (h - 2, w - 2, 0)
        #expect(y.shape == [n, oh, ow, o])
        let dy = Batch(shape: y.shape, values: (0..<y.count).map { _ in rng.nextFloat(in: -1, 1) })
        let dx = try conv.backward(dy, needInputGradient: true)!
        let wv = conv.weight.value
        var expectedY = [Double](repeating: 0, count: y.count)
        var expectedDW = [Double](repeating: 0, count: wv.count)
        var expectedDX = [Double](repeating: 0, count: x.count)
        for s in 0..<n {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    for oc in 0..<o {
                        let out = ((s * oh + oy) * ow + ox) * o + oc
                        var sum = Double(conv.bias!.value[oc])
                        for ky in 0..<3 {
                            for kx in 0..<3 {
                                let iy = oy + ky - pad, ix = ox + kx - pad
                                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                                for ci in 0..<c {
                                    let xi = ((s * h + iy) * w + ix) * c + ci, wi = ((oc * 3 + ky) * 3 + kx) * c + ci
                                    sum += Double(x.values[xi]) * Double(wv[wi])
                                    expectedDW[wi] += Double(dy.values[out]) * Double(x.values[xi])
                                    expectedDX[xi] += Double(dy.values[out]) * Double(wv[wi])
                                }
                            }
                        }
                        expectedY[out] = sum
                    }
                }
            }
        }
        func worst(_ a: [Float], _ b: [Double]) -> Double { zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0 }
        #expect(worst(y.values, expectedY) < 1e-4)
        #expect(worst(conv.weight.gradient, expectedDW) < 2e-3)
        #expect(worst(dx.values, expectedDX) < 1e-4)
        #expect(worst(conv.bias!.gradient, (0..<o).map { oc in
            stride(from: oc, to: dy.count, by: o).reduce(0.0) { $0 + Double(dy.values[$1]) }
        }) < 1e-3)
    }
}

/// The 2x2/stride-2 max-pool kernels (split over samples when large) against direct loops,
/// with ties (first maximum wins) and odd sizes (dropped row/column gets zero gradient).
@Suite struct HalvingMaxPoolTests {
    @Test(arguments: [[2, 5, 7, 3], [9, 26, 26, 32], [3, 11, 11, 64]])
    func matchesDirectLoops(shape: [Int]) throws {
        var rng = RandomGenerator(seed: 60)
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        // Values on a coarse grid so windows contain ties.
        let x = Batch(shape: shape, values: (0..<(n * h * w * c)).map { _ in Float(rng.nextInt(below: 4)) })
        let pool = try MaxPool2D(name: "p")
        let y = try pool.forward(x, training: true)
        let dy = Batch(shape: y.shape, values: (0..<y.count).map { _ in rng.nextFloat(in: -1, 1) })
        let dx = try pool.backward(dy, needInputGradient: true)!
        var expectedDX = [Float](repeating: 0, count: x.count)
        for s in 0..<n {
            for oy in 0..<(h / 2) {
                for ox in 0..<(w / 2) {
                    for ch in 0..<c {
                        var best = -Float.infinity, at = -1
                        for iy in (2 * oy)..<(2 * oy + 2) {
                            for ix in (2 * ox)..<(2 * ox + 2) {
                                let i = ((s * h + iy) * w + ix) * c + ch
                                if x.values[i] > best { best = x.values[i]; at = i }
                            }
                        }
                        let o = ((s * (h / 2) + oy) * (w / 2) + ox) * c + ch
                        #expect(y.values[o] == best)
                        expectedDX[at] += dy.values[o]
                    }
                }
            }
        }
        #expect(dx.values == expectedDX)
    }
}
