import CModelKitKernels
import ModelKitCore

/// Max over each window (padded cells never win). The gradient goes to the first maximum.
public final class MaxPool2D: UnaryLayer {
    public let name: String
    public let attributes: Pool2DAttributes
    private var savedArgmax: [Int32]?
    private var savedShape: [Int]?

    public init(name: String, kernel: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid) throws {
        self.name = name
        attributes = Pool2DAttributes(kernel: kernel, strides: strides, padding: padding)
        try PoolGeometry.validate(attributes, layer: name)
    }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        let g = try PoolGeometry(shape: [1] + inputShape, attributes: attributes, layer: name)
        return [g.oh, g.ow, g.c]
    }

    public func forward(_ input: Batch, training: Bool, rng: inout RandomGenerator) throws -> Batch {
        let g = try PoolGeometry(shape: input.shape, attributes: attributes, layer: name)
        guard input.count < Int(Int32.max) else {
            throw TrainingError.shapeMismatch(layer: name, reason: "input \(input.shape) exceeds 2^31 elements")
        }
        let a = attributes
        let outCount = g.n * g.oh * g.ow * g.c
        if isHalving(g) {
            // Every element is written by the kernel: no zero-fill of the indices.
            var argmax = [Int32](unsafeUninitializedCapacity: training ? outCount : 0) { _, count in
                count = training ? outCount : 0
            }
            let output = Batch.uninitialized([g.n, g.oh, g.ow, g.c]) { out in
                input.values.withUnsafeBufferPointer { xb in
                    argmax.withUnsafeMutableBufferPointer { argb in
                        guard outCount > 0 else { return }
                        let xs = SendableConstPointer(pointer: xb.baseAddress!)
                        let outs = SendablePointer(pointer: out.baseAddress!)
                        let args = training ? SendablePointer(pointer: argb.baseAddress!) : nil
                        let parts = outCount >= 16_384 ? min(Parallelism.threadCount, g.n) : 1
                        Parallelism.run(parts) { part in
                            let samples = Conv2D.range(g.n, parts, part)
                            mk_maxpool2x2_forward(samples.lowerBound, samples.upperBound, g.h, g.w, g.c, xs.pointer,
                                                  outs.pointer, args?.pointer)
                        }
                    }
                }
            }
            savedArgmax = training ? argmax : nil
            savedShape = training ? input.shape : nil
            return output
        }
        var argmax = [Int32](repeating: 0, count: training ? outCount : 0)
        let output = Batch.uninitialized([g.n, g.oh, g.ow, g.c]) { out in
            input.values.withUnsafeBufferPointer { xb in
                argmax.withUnsafeMutableBufferPointer { argb in
                    guard xb.count > 0, outCount > 0 else { return }
                    let xs = SendableConstPointer(pointer: xb.baseAddress!)
                    let outs = SendablePointer(pointer: out.baseAddress!)
                    // An empty array can still have a base address: gate on `training`, not on nil.
                    let args = training ? SendablePointer(pointer: argb.baseAddress!) : nil
                    let perSample = g.oh * g.ow * g.c
                    let parts = outCount >= 16_384 ? min(Parallelism.threadCount, g.n) : 1
                    // Samples are independent and write disjoint output ranges.
                    Parallelism.run(parts) { part in
                        for n in stride(from: part, to: g.n, by: parts) {
                            MaxPool2D.pool(sample: n, g: g, a: a, x: xs.pointer, dst: outs.pointer + n * perSample,
                                           arg: args.map { $0.pointer + n * perSample })
                        }
                    }
                }
            }
        }
        savedArgmax = training ? argmax : nil
        savedShape = training ? input.shape : nil
        return output
    }

    /// Pools one sample; `arg` (when training) receives flat input indices of the maxima.
    static func pool(sample n: Int, g: PoolGeometry, a: Pool2DAttributes, x: UnsafePointer<Float>,
                     dst start: UnsafeMutablePointer<Float>, arg argStart: UnsafeMutablePointer<Int32>?) {
        let c = g.c
        var dst = start
        var arg = argStart
        for oy in 0..<g.oh {
            let y0 = max(oy * a.strideH - g.top, 0), y1 = min(oy * a.strideH - g.top + a.kernelH, g.h)
            for ox in 0..<g.ow {
                let x0 = max(ox * a.strideW - g.left, 0)
                let x1 = min(ox * a.strideW - g.left + a.kernelW, g.w)
                let first = ((n * g.h + y0) * g.w + x0) * c
                for ch in 0..<c { dst[ch] = x[first + ch] }
                if let arg { for ch in 0..<c { arg[ch] = Int32(first + ch) } }
                for iy in y0..<y1 {
                    for ix in x0..<x1 {
                        let base = ((n * g.h + iy) * g.w + ix) * c
                        let row = x + base
                        if let arg, c % 4 == 0 {
                            // SIMD select: which input wins is data-dependent, so no branches.
                            var ch = 0
                            while ch < c {
                                let value = UnsafeRawPointer(row + ch).loadUnaligned(as: SIMD4<Float>.self)
                                let current = UnsafeRawPointer(dst + ch).loadUnaligned(as: SIMD4<Float>.self)
                                let better = value .> current
                                let index = SIMD4<Int32>(repeating: Int32(base + ch)) &+ SIMD4<Int32>(0, 1, 2, 3)
                                let oldIndex = UnsafeRawPointer(arg + ch).loadUnaligned(as: SIMD4<Int32>.self)
                                UnsafeMutableRawPointer(dst + ch).storeBytes(
                                    of: current.replacing(with: value, where: better), as: SIMD4<Float>.self)
                                UnsafeMutableRawPointer(arg + ch).storeBytes(
                                    of: oldIndex.replacing(with: index, where: better), as: SIMD4<Int32>.self)
                                ch += 4
                            }
                        } else if let arg {
                            for ch in 0..<c {
                                let value = row[ch], current = dst[ch]
                                let better = value > current
                                dst[ch] = better ? value : current
                                arg[ch] = better ? Int32(base + ch) : arg[ch]
                            }
                        } else {
                            for ch in 0..<c { dst[ch] = max(dst[ch], row[ch]) }
                        }
                    }
                }
                dst += c
                arg = arg.map { $0 + c }
            }
        }
    }

    public func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch? {
        guard needInputGradient else { return nil }
        guard let argmax = savedArgmax, let shape = savedShape else { throw TrainingError.backwardBeforeForward(layer: name) }
        guard outputGradient.count == argmax.count else {
            throw TrainingError.shapeMismatch(layer: name, reason: "gradient \(outputGradient.shape) vs saved output")
        }
        let g = try PoolGeometry(shape: shape, attributes: attributes, layer: name)
        if isHalving(g) {
            return Batch.uninitialized(shape) { d in
                outputGradient.values.withUnsafeBufferPointer { dyb in
                    argmax.withUnsafeBufferPointer { argb in
                        guard d.count > 0 else { return }
                        let dst = SendablePointer(pointer: d.baseAddress!)
                        if dyb.isEmpty {  // No windows: every input gets zero.
                            dst.pointer.update(repeating: 0, count: d.count)
                            return
                        }
                        let dy = SendableConstPointer(pointer: dyb.baseAddress!)
                        let arg = SendableConstPointer(pointer: argb.baseAddress!)
                        let parts = d.count >= 65_536 ? min(Parallelism.threadCount, g.n) : 1
                        Parallelism.run(parts) { part in
                            let samples = Conv2D.range(g.n, parts, part)
                            mk_maxpool2x2_backward(samples.lowerBound, samples.upperBound, g.h, g.w, g.c, dy.pointer,
                                                   arg.pointer, dst.pointer)
                        }
                    }
                }
            }
        }
        var dx = Batch(zeros: shape)
        dx.values.withUnsafeMutableBufferPointer { d in
            outputGradient.values.withUnsafeBufferPointer { dy in
                argmax.withUnsafeBufferPointer { arg in
                    for i in 0..<dy.count { d[Int(arg[i])] += dy[i] }
                }
            }
        }
        return dx
    }

    /// 2x2 windows, stride 2, no padding: the C kernels' case.
    private func isHalving(_ g: PoolGeometry) -> Bool {
        attributes.kernelH == 2 && attributes.kernelW == 2 && attributes.strideH == 2 && attributes.strideW == 2
            && g.top == 0 && g.left == 0 && g.oh == g.h / 2 && g.ow == g.w / 2
    }

    public func export() throws -> LayerExport { LayerExport(operation: .maxPool2D(attributes)) }
}
