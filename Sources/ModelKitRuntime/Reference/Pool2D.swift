import ModelKitCore

extension ReferenceKernels {
    /// Max pooling over NHWC windows; padded cells are ignored (as if -infinity).
    /// ShapeInference guarantees every window holds at least one real cell.
    public static func maxPool2D(input x: TensorView, attributes a: Pool2DAttributes, output y: MutableTensorView) {
        pool2D(input: x, attributes: a, output: y) { cells, _ in
            var best = -Float.infinity
            for value in cells where value > best { best = value }
            return best
        }
    }

    /// Average pooling over NHWC windows. With `countIncludePad` the divisor counts the padded
    /// cells of the window too (ONNX count_include_pad = 1), otherwise only the real cells.
    public static func averagePool2D(input x: TensorView, attributes a: Pool2DAttributes, output y: MutableTensorView) {
        pool2D(input: x, attributes: a, output: y) { cells, paddedCount in
            var sum: Double = 0
            for value in cells { sum += Double(value) }
            let divisor = a.countIncludePad ? paddedCount : cells.count
            return Float(sum / Double(divisor))
        }
    }

    /// Walks every output cell and hands `reduce` the real input values of its window, plus the
    /// number of window cells that lie inside the padded input (real cells + padding cells).
    private static func pool2D(input x: TensorView, attributes a: Pool2DAttributes, output y: MutableTensorView,
                               reduce: (_ cells: [Float], _ paddedCount: Int) -> Float) {
        let (batch, height, width, channels) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (outHeight, outWidth) = (y.shape[1], y.shape[2])
        let pad = a.padding.resolve(height: height, width: width, kernel: (a.kernelH, a.kernelW),
                                    stride: (a.strideH, a.strideW))
        var cells: [Float] = []
        cells.reserveCapacity(a.kernelH * a.kernelW)
        for n in 0..<batch {
            for oy in 0..<outHeight {
                for ox in 0..<outWidth {
                    for c in 0..<channels {
                        cells.removeAll(keepingCapacity: true)
                        var paddedCount = 0
                        for ky in 0..<a.kernelH {
                            let iy = oy * a.strideH - pad.top + ky
                            if iy < -pad.top || iy >= height + pad.bottom { continue }
                            for kx in 0..<a.kernelW {
                                let ix = ox * a.strideW - pad.left + kx
                                if ix < -pad.left || ix >= width + pad.right { continue }
                                paddedCount += 1
                                if iy < 0 || iy >= height || ix < 0 || ix >= width { continue }
                                cells.append(x.data[((n * height + iy) * width + ix) * channels + c])
                            }
                        }
                        y.data[((n * outHeight + oy) * outWidth + ox) * channels + c] = reduce(cells, paddedCount)
                    }
                }
            }
        }
    }
}
