import ModelKitCore

extension Int8ReferenceKernels {
    /// int8 max pooling; input and output share their parameters, so the max of the codes is the
    /// code of the max. Padded cells are ignored.
    public static func maxPool2D(input x: Int8View, attributes a: Pool2DAttributes, output y: MutableInt8View) {
        let (batch, height, width, channels) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (outHeight, outWidth) = (y.shape[1], y.shape[2])
        let pad = a.padding.resolve(height: height, width: width, kernel: (a.kernelH, a.kernelW),
                                    stride: (a.strideH, a.strideW))
        for n in 0..<batch {
            for oy in 0..<outHeight {
                // The window clipped to the real input (ShapeInference keeps it non-empty).
                let y0 = max(oy * a.strideH - pad.top, 0), y1 = min(oy * a.strideH - pad.top + a.kernelH, height)
                for ox in 0..<outWidth {
                    let x0 = max(ox * a.strideW - pad.left, 0), x1 = min(ox * a.strideW - pad.left + a.kernelW, width)
                    let destination = y.data + ((n * outHeight + oy) * outWidth + ox) * channels
                    for c in 0..<channels {
                        var best = Int8.min
                        for iy in y0..<y1 {
                            for ix in x0..<x1 {
                                best = max(best, x.data[((n * height + iy) * width + ix) * channels + c])
                            }
                        }
                        destination[c] = best
                    }
                }
            }
        }
    }

    /// int8 average pooling with shared parameters: zeroPoint + round(Σ (q − zeroPoint) / divisor),
    /// ties away from zero. Padded cells count in the divisor with `countIncludePad` (they hold
    /// the real value 0), otherwise only real cells do.
    public static func averagePool2D(input x: Int8View, attributes a: Pool2DAttributes, output y: MutableInt8View) {
        pool2D(input: x, attributes: a, output: y) { cells, paddedCount in
            var sum: Int32 = 0
            for q in cells { sum += Int32(q) - x.zeroPoint }
            return average(sum, count: a.countIncludePad ? paddedCount : cells.count, zeroPoint: y.zeroPoint)
        }
    }

    /// int8 global average pooling over H×W with shared parameters.
    public static func globalAveragePool(input x: Int8View, output y: MutableInt8View) {
        let (batch, height, width, channels) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        for n in 0..<batch {
            for c in 0..<channels {
                var sum: Int32 = 0
                for p in 0..<(height * width) {
                    sum += Int32(x.data[(n * height * width + p) * channels + c]) - x.zeroPoint
                }
                y.data[n * channels + c] = average(sum, count: height * width, zeroPoint: y.zeroPoint)
            }
        }
    }

    /// zeroPoint + sum / count rounded to nearest (ties away from zero), clamped to int8.
    @inline(__always)
    static func average(_ sum: Int32, count: Int, zeroPoint: Int32) -> Int8 {
        let divisor = Int32(count)
        let rounded = sum >= 0 ? (sum + divisor / 2) / divisor : -((-sum + divisor / 2) / divisor)
        return Int8(min(max(rounded + zeroPoint, -128), 127))
    }

    private static func pool2D(input x: Int8View, attributes a: Pool2DAttributes, output y: MutableInt8View,
                               reduce: (_ cells: [Int8], _ paddedCount: Int) -> Int8) {
        PoolWindows.pool(input: x.data, inputShape: x.shape, output: y.data, outputShape: y.shape, attributes: a,
                         reduce: reduce)
    }
}
