import ModelKitCore

/// Mean over each window; padded cells count in the divisor only with `countIncludePad`.
public final class AveragePool2D: UnaryLayer {
    public let name: String
    public let attributes: Pool2DAttributes
    private var savedShape: [Int]?

    public init(name: String, kernel: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid,
                countIncludePad: Bool = false) throws {
        self.name = name
        attributes = Pool2DAttributes(kernel: kernel, strides: strides, padding: padding, countIncludePad: countIncludePad)
        try PoolGeometry.validate(attributes, layer: name)
    }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        let g = try PoolGeometry(shape: [1] + inputShape, attributes: attributes, layer: name)
        return [g.oh, g.ow, g.c]
    }

    /// Visits every (output index, input index, 1/divisor) triple.
    private func forEachWindow(_ g: PoolGeometry, _ body: (Int, Int, Float) -> Void) {
        let a = attributes
        var o = 0
        for n in 0..<g.n {
            for oy in 0..<g.oh {
                let y0 = max(oy * a.strideH - g.top, 0), y1 = min(oy * a.strideH - g.top + a.kernelH, g.h)
                for ox in 0..<g.ow {
                    let x0 = max(ox * a.strideW - g.left, 0), x1 = min(ox * a.strideW - g.left + a.kernelW, g.w)
                    let cells = a.countIncludePad ? a.kernelH * a.kernelW : (y1 - y0) * (x1 - x0)
                    let scale = 1 / Float(cells)
                    for iy in y0..<y1 {
                        for ix in x0..<x1 {
                            let base = ((n * g.h + iy) * g.w + ix) * g.c
                            for ch in 0..<g.c { body(o + ch, base + ch, scale) }
                        }
                    }
                    o += g.c
                }
            }
        }
    }

    public func forward(_ input: Batch, training: Bool, rng: inout RandomGenerator) throws -> Batch {
        let g = try PoolGeometry(shape: input.shape, attributes: attributes, layer: name)
        var output = Batch(zeros: [g.n, g.oh, g.ow, g.c])
        output.values.withUnsafeMutableBufferPointer { out in
            input.values.withUnsafeBufferPointer { x in
                forEachWindow(g) { o, i, scale in out[o] += x[i] * scale }
            }
        }
        savedShape = training ? input.shape : nil
        return output
    }

    public func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch? {
        guard needInputGradient else { return nil }
        guard let shape = savedShape else { throw TrainingError.backwardBeforeForward(layer: name) }
        let g = try PoolGeometry(shape: shape, attributes: attributes, layer: name)
        try Check.same(outputGradient.shape, [g.n, g.oh, g.ow, g.c], name, "output gradient")
        var dx = Batch(zeros: shape)
        dx.values.withUnsafeMutableBufferPointer { d in
            outputGradient.values.withUnsafeBufferPointer { dy in
                forEachWindow(g) { o, i, scale in d[i] += dy[o] * scale }
            }
        }
        return dx
    }

    public func export() throws -> LayerExport { LayerExport(operation: .averagePool2D(attributes)) }
}
