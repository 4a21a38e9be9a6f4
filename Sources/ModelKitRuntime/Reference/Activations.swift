#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ModelKitCore

extension ReferenceKernels {
    /// max(x, 0)
    public static func relu(input x: TensorView, output y: MutableTensorView) {
        for i in 0..<count(x.shape) {
            let value = x.data[i]
            y.data[i] = value > 0 ? value : 0
        }
    }

    /// min(max(x, lo), hi)
    public static func clip(input x: TensorView, min lo: Float, max hi: Float, output y: MutableTensorView) {
        for i in 0..<count(x.shape) {
            y.data[i] = Swift.min(Swift.max(x.data[i], lo), hi)
        }
    }

    /// x for x >= 0, alpha·x otherwise.
    public static func leakyRelu(input x: TensorView, alpha: Float, output y: MutableTensorView) {
        for i in 0..<count(x.shape) {
            let value = x.data[i]
            y.data[i] = value >= 0 ? value : alpha * value
        }
    }

    /// 1 / (1 + e^-x), evaluated so that e^… never overflows.
    public static func sigmoid(input x: TensorView, output y: MutableTensorView) {
        for i in 0..<count(x.shape) {
            let value = x.data[i]
            if value >= 0 {
                y.data[i] = 1 / (1 + expf(-value))
            } else {
                let e = expf(value)
                y.data[i] = e / (1 + e)
            }
        }
    }

    /// Hyperbolic tangent.
    public static func tanh(input x: TensorView, output y: MutableTensorView) {
        for i in 0..<count(x.shape) {
            y.data[i] = tanhf(x.data[i])
        }
    }

    /// x · relu6(x + 3) / 6
    public static func hardSwish(input x: TensorView, output y: MutableTensorView) {
        for i in 0..<count(x.shape) {
            let value = x.data[i]
            let relu6 = Swift.min(Swift.max(value + 3, 0), 6)
            y.data[i] = value * relu6 / 6
        }
    }
}
