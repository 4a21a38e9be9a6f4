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

    private static func pool2D(input x: TensorView, attributes a: Pool2DAttributes, output y: MutableTensorView,
                               reduce: (_ cells: [Float], _ paddedCount: Int) -> Float) {
        PoolWindows.pool(input: x.data, inputShape: x.shape, output: y.data, outputShape: y.shape, attributes: a,
                         reduce: reduce)
    }
}
