import ModelKitCore

/// The int8 reference kernels: plain loops over integers, the oracle the optimized int8 kernels
/// must match bit for bit. Shapes and parameters were checked by ShapeInference.
public enum Int8ReferenceKernels {
    /// q = clamp(round(x / scale) + zeroPoint, -128, 127); NaN maps to -128.
    public static func quantize(input x: TensorView, output y: MutableInt8View) {
        let count = ReferenceKernels.count(x.shape)
        for index in 0..<count {
            y.data[index] = quantize(x.data[index], scale: y.scale, zeroPoint: y.zeroPoint)
        }
    }

    @inline(__always)
    public static func quantize(_ value: Float, scale: Float, zeroPoint: Int32) -> Int8 {
        let q = (value / scale).rounded() + Float(zeroPoint)
        if !(q >= -128) { return -128 }
        if !(q <= 127) { return 127 }
        return Int8(q)
    }

    /// x = scale × (q − zeroPoint).
    public static func dequantize(input x: Int8View, output y: MutableTensorView) {
        let count = ReferenceKernels.count(x.shape)
        for index in 0..<count {
            y.data[index] = x.scale * Float(Int32(x.data[index]) - x.zeroPoint)
        }
    }
}
