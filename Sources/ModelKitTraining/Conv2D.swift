import CModelKitKernels
import ModelKitCore

/// 2-D convolution over NHWC batches; weight [O,kH,kW,C/groups], bias [O].
/// groups == 1 runs as im2col + GEMM (forward A·Wᵀ, weight gradient dYᵀ·cols, input gradient
/// dY·W then col2im); groups > 1 uses direct loops.
public final class Conv2D: UnaryLayer {
    public let name: String
    public let inChannels: Int
    public let outChannels: Int
    public let kernelH: Int, kernelW: Int
    public let strideH: Int, strideW: Int
    public let dilationH: Int, dilationW: Int
    public let padding: Padding
    public let groups: Int
    public let weight: Parameter
    public let bias: Parameter?

    private var savedColumns: [Float]?
    private var savedInput: Batch?
    private var savedGeometry: Geometry?
    /// Input-gradient column buffer, kept between steps.
    private var scratch: [Float] = []
    /// Set by a forward pass that applied a fused ReLU: backward then masks the incoming gradient
    /// with `savedOutput` (the ReLU output shares its storage; no copy).
    private var reluFused = false
    private var savedOutput: Batch?
    /// The masked output gradient, kept between steps.
    private var maskScratch: [Float] = []
    /// Per-part weight gradients of a split backward pass, kept between steps.
    private var partialScratch: [Float] = []

    public init(name: String, inChannels: Int, outChannels: Int, kernel: (Int, Int), strides: (Int, Int) = (1, 1),
                dilations: (Int, Int) = (1, 1), padding: Padding = .valid, groups: Int = 1, useBias: Bool = true,
                rng: inout RandomGenerator) throws {
        func fail(_ reason: String) -> TrainingError { .invalidConfiguration(layer: name, reason: reason) }
        guard inChannels >= 1, outChannels >= 1 else { throw fail("channel counts must be at least 1") }
        guard kernel.0 >= 1, kernel.1 >= 1 else { throw fail("kernel must be at least 1x1") }
        guard strides.0 >= 1, strides.1 >= 1, dilations.0 >= 1, dilations.1 >= 1 else {
            throw fail("strides and dilations must be at least 1")
        }
        guard groups >= 1, inChannels % groups == 0, outChannels % groups == 0 else {
            throw fail("groups \(groups) must divide in \(inChannels) and out \(outChannels) channels")
        }
        self.name = name
        self.inChannels = inChannels
        self.outChannels = outChannels
        (kernelH, kernelW) = kernel
        (strideH, strideW) = strides
        (dilationH, dilationW) = dilations
        self.padding = padding
        self.groups = groups
        let perGroup = inChannels / groups
        let receptive = kernel.0 * kernel.1
        let count = outChannels * receptive * perGroup
        weight = Parameter(name: "\(name).weight", shape: [outChannels, kernel.0, kernel.1, perGroup],
                           value: Initializer.glorotUniform(count: count, fanIn: receptive * perGroup,
                                                            fanOut: receptive * outChannels / groups, rng: &rng))
        bias = useBias ? Parameter(name: "\(name).bias", shape: [outChannels],
                                   value: [Float](repeating: 0, count: outChannels)) : nil
    }

    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    struct Geometry: Equatable, Sendable {
        var n, h, w, c, oh, ow, top, left: Int
    }

    /// Kernel size, strides and dilations, as a value the worker closures can capture.
    struct Window: Sendable {
        var kh, kw, sh, sw, dh, dw: Int
    }

    var window: Window {
        Window(kh: kernelH, kw: kernelW, sh: strideH, sw: strideW, dh: dilationH, dw: dilationW)
    }

    func geometry(_ shape: [Int]) throws -> Geometry {
        guard shape.count == 4, shape[3] == inChannels else {
            throw TrainingError.shapeMismatch(layer: name, reason: "expected [N,H,W,\(inChannels)], got \(shape)")
        }
        let pad = padding.resolve(height: shape[1], width: shape[2], kernel: (kernelH, kernelW),
                                  stride: (strideH, strideW), dilation: (dilationH, dilationW))
        let effH = (kernelH - 1) * dilationH + 1, effW = (kernelW - 1) * dilationW + 1
        let paddedH = shape[1] + pad.top + pad.bottom, paddedW = shape[2] + pad.left + pad.right
        guard paddedH >= effH, paddedW >= effW else {
            throw TrainingError.shapeMismatch(layer: name, reason: "input \(shape) is smaller than the window")
        }
        return Geometry(n: shape[0], h: shape[1], w: shape[2], c: shape[3], oh: (paddedH - effH) / strideH + 1,
                        ow: (paddedW - effW) / strideW + 1, top: pad.top, left: pad.left)
    }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        let g = try geometry([1] + inputShape)
        return [g.oh, g.ow, outChannels]
    }

    /// Whether the input itself is the column matrix (1x1, stride 1, no padding).
    private func isPointwise(_ g: Geometry) -> Bool {
        kernelH == 1 && kernelW == 1 && strideH == 1 && strideW == 1 && g.top == 0 && g.left == 0
            && g.oh == g.h && g.ow == g.w
    }

    public func forward(_ input: Batch, training: Bool, rng: inout RandomGenerator) throws -> Batch {
        try forward(input, training: training, fusedReLU: false)
    }

    /// Whether `forward(_:training:fusedReLU: true)` is available (im2col path only).
    var canFuseReLU: Bool { groups == 1 }

    /// Forward with max(·, 0) applied in the GEMM epilogue when `fusedReLU` (Network does this when
    /// a ReLU is this layer's only reader). The following `backward` then takes the gradient with
    /// respect to the ReLU output.
    func forward(_ input: Batch, training: Bool, fusedReLU: Bool) throws -> Batch {
        precondition(!fusedReLU || canFuseReLU, "fused ReLU needs groups == 1")
        let g = try geometry(input.shape)
        savedGeometry = training ? g : nil
        reluFused = training && fusedReLU
        savedOutput = nil
        if groups > 1 {
            savedInput = training ? input : nil
            return groupedForward(input, g)
        }
        if isDirectSingleChannel(g) { return directForward(input, g, training: training, fusedReLU: fusedReLU) }
        let k = kernelH * kernelW * g.c
        let o = outChannels
        let ohw = g.oh * g.ow
        let pointwise = isPointwise(g)
        // 1x1 convolutions read the input itself as the column matrix (columns stays empty).
        var columns: [Float] = []
        if !pointwise {
            // Reuse last step's column buffer when it has the same size (uniquely owned once
            // released): saves a multi-megabyte allocation and its page faults every step.
            columns = savedColumns ?? []
            savedColumns = nil
            if columns.count != g.n * ohw * k { columns = [Float](repeating: 0, count: g.n * ohw * k) }
        }
        let parts = sampleParts(g)
        let window = self.window
        let output = Batch.uninitialized([g.n, g.oh, g.ow, o]) { out in
            input.values.withUnsafeBufferPointer { xb in
                columns.withUnsafeMutableBufferPointer { cb in
                    weight.value.withUnsafeBufferPointer { wb in
                        withOptionalBuffer(bias?.value) { b in
                            let x = SendableConstPointer(pointer: xb.baseAddress!)
                            // Gate on `pointwise`, not on nil: an empty array can still have a base address.
                            let cols = pointwise ? nil : SendablePointer(pointer: cb.baseAddress!)
                            let w = SendableConstPointer(pointer: wb.baseAddress!)
                            let biasPointer = b.map { SendableConstPointer(pointer: $0) }
                            let dst = SendablePointer(pointer: out.baseAddress!)
                            // One region per pass: each part builds the columns of its samples and
                            // multiplies them while they are still in cache.
                            Parallelism.run(parts) { part in
                                let samples = Conv2D.range(g.n, parts, part)
                                guard !samples.isEmpty else { return }
                                let r0 = samples.lowerBound * ohw, count = samples.count * ohw
                                let a: UnsafePointer<Float>
                                if let cols {
                                    Conv2D.im2col(x.pointer, g, window, samples, into: cols.pointer)
                                    a = UnsafePointer(cols.pointer)
                                } else {
                                    a = x.pointer
                                }
                                Gemm.multiplyBiasReLU(transA: false, transB: true, m: count, n: o, k: k,
                                                      a: a + r0 * k, lda: k, b: w.pointer, ldb: k,
                                                      c: dst.pointer + r0 * o, ldc: o, bias: biasPointer?.pointer,
                                                      relu: fusedReLU, threads: parts > 1 ? 1 : Parallelism.threadCount)
                            }
                        }
                    }
                }
            }
        }
        savedColumns = training ? (pointwise ? input.values : columns) : nil
        if reluFused { savedOutput = output }
        return output
    }

    /// How many sample ranges a pass over this geometry is split into: one per thread when the
    /// GEMM work would be split anyway, else 1.
    private func sampleParts(_ g: Geometry) -> Int {
        let work = 2 * g.n * g.oh * g.ow * kernelH * kernelW * g.c * outChannels
        return work >= Gemm.parallelThreshold ? max(1, min(Parallelism.threadCount, g.n)) : 1
    }

    /// The `part`-th of `parts` contiguous, nearly equal sample ranges of 0..<n.
    static func range(_ n: Int, _ parts: Int, _ part: Int) -> Range<Int> {
        (n * part / parts)..<(n * (part + 1) / parts)
    }

    /// The output gradient with the fused ReLU's mask applied (when the forward pass fused one), and
    /// the bias gradient computed in the same pass.
    private func effectiveOutputGradient(_ outputGradient: Batch) throws -> [Float] {
        guard reluFused else {
            if let bias { bias.gradient = ColumnSums.of(outputGradient.values, columns: outChannels) }
            return outputGradient.values
        }
        guard let output = savedOutput else { throw TrainingError.backwardBeforeForward(layer: name) }
        var masked = maskScratch
        maskScratch = []
        let sums = ColumnSums.reluMasked(outputGradient.values, output: output.values, into: &masked,
                                         columns: outChannels, sums: bias != nil)
        if let bias, let sums { bias.gradient = sums }
        return masked
    }

    public func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch? {
        guard let g = savedGeometry else { throw TrainingError.backwardBeforeForward(layer: name) }
        try Check.same(outputGradient.shape, [g.n, g.oh, g.ow, outChannels], name, "output gradient")
        if groups > 1 {
            if let bias { bias.gradient = ColumnSums.of(outputGradient.values, columns: outChannels) }
            return try groupedBackward(outputGradient, g, needInputGradient)
        }
        if isDirectSingleChannel(g) {
            let dyValues = try effectiveOutputGradient(outputGradient)
            defer { if reluFused { maskScratch = dyValues } }
            return try directBackward(dyValues, g, needInputGradient: needInputGradient)
        }
        guard let columns = savedColumns else { throw TrainingError.backwardBeforeForward(layer: name) }
        let dyValues = try effectiveOutputGradient(outputGradient)
        // Hand the mask buffer back for the next step once this pass no longer reads it.
        defer { if reluFused { maskScratch = dyValues } }
        let k = kernelH * kernelW * g.c
        let o = outChannels
        let ohw = g.oh * g.ow
        let pointwise = isPointwise(g)
        let parts = sampleParts(g)
        let window = self.window
        // Per-part weight gradients (parts > 1), summed below in part order: deterministic for a
        // given thread count, with no atomics.
        var partials = partialScratch
        partialScratch = []
        if parts > 1 && partials.count != parts * o * k { partials = [Float](repeating: 0, count: parts * o * k) }
        var dColumns = scratch
        scratch = []
        let needColumns = needInputGradient && !pointwise
        if needColumns && dColumns.count != g.n * ohw * k { dColumns = [Float](repeating: 0, count: g.n * ohw * k) }
        let inputCount = needInputGradient ? g.n * g.h * g.w * g.c : 0
        let sampleSize = g.h * g.w * g.c
        let dx = [Float](unsafeUninitializedCapacity: inputCount) { dxb, initialized in
            dyValues.withUnsafeBufferPointer { dyb in
                columns.withUnsafeBufferPointer { cb in
                    weight.value.withUnsafeBufferPointer { wb in
                        weight.gradient.withUnsafeMutableBufferPointer { dwb in
                            partials.withUnsafeMutableBufferPointer { pb in
                                dColumns.withUnsafeMutableBufferPointer { dcb in
                                    let dy = SendableConstPointer(pointer: dyb.baseAddress!)
                                    let cols = SendableConstPointer(pointer: cb.baseAddress!)
                                    let w = SendableConstPointer(pointer: wb.baseAddress!)
                                    let dw = SendablePointer(pointer: dwb.baseAddress!)
                                    let partial = pb.baseAddress.map { SendablePointer(pointer: $0) }
                                    let dCols = dcb.baseAddress.map { SendablePointer(pointer: $0) }
                                    let dxs = dxb.baseAddress.map { SendablePointer(pointer: $0) }
                                    let inner = parts > 1 ? 1 : Parallelism.threadCount
                                    Parallelism.run(parts) { part in
                                        let samples = Conv2D.range(g.n, parts, part)
                                        guard !samples.isEmpty else { return }
                                        let r0 = samples.lowerBound * ohw, count = samples.count * ohw
                                        let dwDestination = parts > 1 ? partial!.pointer + part * o * k : dw.pointer
                                        Gemm.multiply(transA: true, transB: false, m: o, n: k, k: count,
                                                      a: dy.pointer + r0 * o, lda: o, b: cols.pointer + r0 * k,
                                                      ldb: k, beta: 0, c: dwDestination, ldc: k, threads: inner)
                                        guard needInputGradient, let dxs else { return }
                                        if pointwise {
                                            Gemm.multiply(transA: false, transB: false, m: count, n: k, k: o,
                                                          a: dy.pointer + r0 * o, lda: o, b: w.pointer, ldb: k,
                                                          beta: 0, c: dxs.pointer + r0 * k, ldc: k, threads: inner)
                                        } else {
                                            Gemm.multiply(transA: false, transB: false, m: count, n: k, k: o,
                                                          a: dy.pointer + r0 * o, lda: o, b: w.pointer, ldb: k,
                                                          beta: 0, c: dCols!.pointer + r0 * k, ldc: k, threads: inner)
                                            (dxs.pointer + samples.lowerBound * sampleSize)
                                                .update(repeating: 0, count: samples.count * sampleSize)
                                            Conv2D.col2im(dCols!.pointer, g, window, samples, into: dxs.pointer)
                                        }
                                    }
                                    if parts > 1 {
                                        let total = o * k
                                        for i in 0..<total {
                                            var sum = partial!.pointer[i]
                                            for p in 1..<parts { sum += partial!.pointer[p * total + i] }
                                            dw.pointer[i] = sum
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            initialized = inputCount
        }
        scratch = dColumns
        partialScratch = partials
        guard needInputGradient else { return nil }
        return Batch(shape: [g.n, g.h, g.w, g.c], values: dx)
    }

    // MARK: single input channel, direct (C kernels).

    /// One input channel, stride 1, no padding or dilation (an image CNN's first layer): K = kh·kw
    /// is too small for im2col + GEMM to pay, so C kernels convolve directly.
    private func isDirectSingleChannel(_ g: Geometry) -> Bool {
        groups == 1 && g.c == 1 && strideH == 1 && strideW == 1 && dilationH == 1 && dilationW == 1 && g.top == 0
            && g.left == 0 && g.oh == g.h - kernelH + 1 && g.ow == g.w - kernelW + 1
            && mk_conv1ch_supported(kernelH, kernelW, outChannels) != 0
    }

    private func directForward(_ input: Batch, _ g: Geometry, training: Bool, fusedReLU: Bool) -> Batch {
        savedInput = training ? input : nil
        savedColumns = nil
        let parts = sampleParts(g)
        let (kh, kw, o) = (kernelH, kernelW, outChannels)
        let output = Batch.uninitialized([g.n, g.oh, g.ow, o]) { out in
            input.values.withUnsafeBufferPointer { xb in
                weight.value.withUnsafeBufferPointer { wb in
                    withOptionalBuffer(bias?.value) { b in
                        let x = SendableConstPointer(pointer: xb.baseAddress!)
                        let w = SendableConstPointer(pointer: wb.baseAddress!)
                        let biasPointer = b.map { SendableConstPointer(pointer: $0) }
                        let dst = SendablePointer(pointer: out.baseAddress!)
                        Parallelism.run(parts) { part in
                            let samples = Conv2D.range(g.n, parts, part)
                            mk_conv1ch_forward(samples.lowerBound, samples.upperBound, g.h, g.w, kh, kw, o, x.pointer,
                                               w.pointer, biasPointer?.pointer, fusedReLU ? 1 : 0, dst.pointer)
                        }
                    }
                }
            }
        }
        if reluFused { savedOutput = output }
        return output
    }

    private func directBackward(_ dyValues: [Float], _ g: Geometry, needInputGradient: Bool) throws -> Batch? {
        guard let input = savedInput else { throw TrainingError.backwardBeforeForward(layer: name) }
        let parts = sampleParts(g)
        let (kh, kw, o) = (kernelH, kernelW, outChannels)
        let size = weight.count
        // Per-part weight gradients summed in part order, as in the im2col path.
        var partials = partialScratch
        partialScratch = []
        if parts > 1 && partials.count != parts * size { partials = [Float](repeating: 0, count: parts * size) }
        let inputCount = needInputGradient ? input.count : 0
        let dx = [Float](unsafeUninitializedCapacity: inputCount) { dxb, initialized in
            dyValues.withUnsafeBufferPointer { dyb in
                input.values.withUnsafeBufferPointer { xb in
                    weight.value.withUnsafeBufferPointer { wb in
                        weight.gradient.withUnsafeMutableBufferPointer { dwb in
                            partials.withUnsafeMutableBufferPointer { pb in
                                let dy = SendableConstPointer(pointer: dyb.baseAddress!)
                                let x = SendableConstPointer(pointer: xb.baseAddress!)
                                let w = SendableConstPointer(pointer: wb.baseAddress!)
                                let dw = SendablePointer(pointer: dwb.baseAddress!)
                                let partial = parts > 1 ? SendablePointer(pointer: pb.baseAddress!) : nil
                                let dxs = needInputGradient ? SendablePointer(pointer: dxb.baseAddress!) : nil
                                Parallelism.run(parts) { part in
                                    let samples = Conv2D.range(g.n, parts, part)
                                    let destination = partial.map { $0.pointer + part * size } ?? dw.pointer
                                    mk_conv1ch_weight_gradient(samples.lowerBound, samples.upperBound, g.h, g.w, kh, kw,
                                                               o, x.pointer, dy.pointer, destination)
                                    if let dxs {
                                        mk_conv1ch_input_gradient(samples.lowerBound, samples.upperBound, g.h, g.w, kh,
                                                                  kw, o, dy.pointer, w.pointer, dxs.pointer)
                                    }
                                }
                                if let partial {
                                    for i in 0..<size {
                                        var sum = partial.pointer[i]
                                        for p in 1..<parts { sum += partial.pointer[p * size + i] }
                                        dw.pointer[i] = sum
                                    }
                                }
                            }
                        }
                    }
                }
            }
            initialized = inputCount
        }
        partialScratch = partials
        return needInputGradient ? Batch(shape: input.shape, values: dx) : nil
    }

    // MARK: im2col / col2im (groups == 1). Column order (ky, kx, c) matches the weight layout.

    /// Writes the column rows of `samples` into `columns` (laid out for the whole batch).
    private static func im2col(_ x: UnsafePointer<Float>, _ g: Geometry, _ window: Window, _ samples: Range<Int>,
                               into columns: UnsafeMutablePointer<Float>) {
        let (kh, kw, sh, sw, dh, dw) = (window.kh, window.kw, window.sh, window.sw, window.dh, window.dw)
        let k = kh * kw * g.c
        let perSample = g.oh * g.ow * k
        for n in samples {
            var dst = columns + n * perSample
            let sample = x + n * g.h * g.w * g.c
            for oy in 0..<g.oh {
                for ox in 0..<g.ow {
                    let ix0 = ox * sw - g.left
                    let rowInside = dw == 1 && ix0 >= 0 && ix0 + kw <= g.w
                    for ky in 0..<kh {
                        let iy = oy * sh - g.top + ky * dh
                        if rowInside && iy >= 0 && iy < g.h {
                            // The kw·C values of this kernel row are contiguous in the input.
                            let src = sample + (iy * g.w + ix0) * g.c
                            let span = kw * g.c
                            if span >= 32 {
                                dst.update(from: src, count: span)
                            } else {
                                for e in 0..<span { dst[e] = src[e] }
                            }
                            dst += span
                            continue
                        }
                        for kx in 0..<kw {
                            let ix = ox * sw - g.left + kx * dw
                            if iy >= 0 && iy < g.h && ix >= 0 && ix < g.w {
                                let src = sample + (iy * g.w + ix) * g.c
                                if g.c >= 32 {
                                    dst.update(from: src, count: g.c)
                                } else {
                                    for ch in 0..<g.c { dst[ch] = src[ch] }
                                }
                            } else {
                                for ch in 0..<g.c { dst[ch] = 0 }
                            }
                            dst += g.c
                        }
                    }
                }
            }
        }
    }

    /// Adds the column-gradient rows of `samples` into their (zeroed) input-gradient samples.
    private static func col2im(_ columns: UnsafePointer<Float>, _ g: Geometry, _ window: Window, _ samples: Range<Int>,
                               into dx: UnsafeMutablePointer<Float>) {
        let (kh, kw, sh, sw, dh, dw) = (window.kh, window.kw, window.sh, window.sw, window.dh, window.dw)
        let k = kh * kw * g.c
        let perSample = g.oh * g.ow * k
        let sampleSize = g.h * g.w * g.c
        for n in samples {
            var src = columns + n * perSample
            let sample = dx + n * sampleSize
            for oy in 0..<g.oh {
                for ox in 0..<g.ow {
                    for ky in 0..<kh {
                        let iy = oy * sh - g.top + ky * dh
                        for kx in 0..<kw {
                            let ix = ox * sw - g.left + kx * dw
                            if iy >= 0 && iy < g.h && ix >= 0 && ix < g.w {
                                let dst = sample + (iy * g.w + ix) * g.c
                                for ch in 0..<g.c { dst[ch] += src[ch] }
                            }
                            src += g.c
                        }
                    }
                }
            }
        }
    }

    // MARK: grouped convolution, direct loops.

    private func groupedForward(_ input: Batch, _ g: Geometry) -> Batch {
        let cg = g.c / groups, og = outChannels / groups, o = outChannels
        return Batch.uninitialized([g.n, g.oh, g.ow, o]) { out in
            input.values.withUnsafeBufferPointer { x in
                weight.value.withUnsafeBufferPointer { w in
                    for n in 0..<g.n {
                        for oy in 0..<g.oh {
                            for ox in 0..<g.ow {
                                let base = ((n * g.oh + oy) * g.ow + ox) * o
                                for oc in 0..<o {
                                    let group = oc / og
                                    var sum: Float = bias?.value[oc] ?? 0
                                    for ky in 0..<kernelH {
                                        let iy = oy * strideH - g.top + ky * dilationH
                                        guard iy >= 0 && iy < g.h else { continue }
                                        for kx in 0..<kernelW {
                                            let ix = ox * strideW - g.left + kx * dilationW
                                            guard ix >= 0 && ix < g.w else { continue }
                                            let xi = ((n * g.h + iy) * g.w + ix) * g.c + group * cg
                                            let wi = ((oc * kernelH + ky) * kernelW + kx) * cg
                                            for ci in 0..<cg { sum += x[xi + ci] * w[wi + ci] }
                                        }
                                    }
                                    out[base + oc] = sum
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    private func groupedBackward(_ dy: Batch, _ g: Geometry, _ needInput: Bool) throws -> Batch? {
        guard let input = savedInput else { throw TrainingError.backwardBeforeForward(layer: name) }
        let cg = g.c / groups, og = outChannels / groups, o = outChannels
        var dw = [Float](repeating: 0, count: weight.count)
        var dx = [Float](repeating: 0, count: needInput ? input.count : 0)
        input.values.withUnsafeBufferPointer { x in
            weight.value.withUnsafeBufferPointer { w in
                dy.values.withUnsafeBufferPointer { d in
                    for n in 0..<g.n {
                        for oy in 0..<g.oh {
                            for ox in 0..<g.ow {
                                let base = ((n * g.oh + oy) * g.ow + ox) * o
                                for oc in 0..<o {
                                    let grad = d[base + oc]
                                    let group = oc / og
                                    for ky in 0..<kernelH {
                                        let iy = oy * strideH - g.top + ky * dilationH
                                        guard iy >= 0 && iy < g.h else { continue }
                                        for kx in 0..<kernelW {
                                            let ix = ox * strideW - g.left + kx * dilationW
                                            guard ix >= 0 && ix < g.w else { continue }
                                            let xi = ((n * g.h + iy) * g.w + ix) * g.c + group * cg
                                            let wi = ((oc * kernelH + ky) * kernelW + kx) * cg
                                            for ci in 0..<cg {
                                                dw[wi + ci] += grad * x[xi + ci]
                                                if needInput { dx[xi + ci] += grad * w[wi + ci] }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        weight.gradient = dw
        return needInput ? Batch(shape: input.shape, values: dx) : nil
    }

    public func export() throws -> LayerExport {
        var initializers = [(name: weight.name, tensor: weight.tensor)]
        if let bias { initializers.append((bias.name, bias.tensor)) }
        return LayerExport(operation: .conv2D(Conv2DAttributes(strides: (strideH, strideW),
                                                               dilations: (dilationH, dilationW), padding: padding,
                                                               groups: groups)),
                           initializers: initializers)
    }
}
