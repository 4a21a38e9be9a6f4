#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ModelKitCore

extension ReferenceKernels {
    /// Softmax along one axis (ONNX opset 13 semantics; a negative axis counts from the end).
    /// Subtracts the maximum of each slice first so large logits stay finite; sums in Double.
    public static func softmax(input x: TensorView, axis: Int, output y: MutableTensorView) {
        let dims = x.shape.dims
        let axis = axis < 0 ? axis + dims.count : axis
        var outer = 1
        for d in dims[..<axis] { outer *= d }
        let length = dims[axis]
        var inner = 1
        for d in dims[(axis + 1)...] { inner *= d }

        for o in 0..<outer {
            for i in 0..<inner {
                // Element k of this slice lives at base + k * inner.
                let base = o * length * inner + i
                var maximum = -Float.infinity
                for k in 0..<length { maximum = Swift.max(maximum, x.data[base + k * inner]) }
                var sum: Double = 0
                for k in 0..<length {
                    let e = expf(x.data[base + k * inner] - maximum)
                    y.data[base + k * inner] = e
                    sum += Double(e)
                }
                for k in 0..<length {
                    y.data[base + k * inner] = Float(Double(y.data[base + k * inner]) / sum)
                }
            }
        }
    }
}
