import ModelKitCore

/// The fixed-point constants of an int8 addition (TFLite's scheme): both inputs are shifted left
/// by 20 bits, rescaled to a common scale (twice the larger input scale), added, then rescaled to
/// the output scale; the fused activation becomes a clamp.
public struct AddRequantization: Sendable {
    public static let leftShift: Int32 = 20
    public var input1: QuantizedMultiplier
    public var input2: QuantizedMultiplier
    public var output: QuantizedMultiplier
    public var zeroPoint1: Int32
    public var zeroPoint2: Int32
    public var outputZeroPoint: Int32
    public var minimum: Int32
    public var maximum: Int32

    public init(_ a: (scale: Float, zeroPoint: Int32), _ b: (scale: Float, zeroPoint: Int32),
                output y: (scale: Float, zeroPoint: Int32), activation: FusedActivation) {
        let twiceMax = 2 * Double(max(a.scale, b.scale))
        input1 = QuantizedMultiplier(Double(a.scale) / twiceMax)
        input2 = QuantizedMultiplier(Double(b.scale) / twiceMax)
        output = QuantizedMultiplier(twiceMax / (Double(1 << AddRequantization.leftShift) * Double(y.scale)))
        zeroPoint1 = a.zeroPoint
        zeroPoint2 = b.zeroPoint
        outputZeroPoint = y.zeroPoint
        (minimum, maximum) = Requantization.clamp(activation, scale: y.scale, zeroPoint: y.zeroPoint)
    }

    @inline(__always)
    public func apply(_ a: Int8, _ b: Int8) -> Int8 {
        let scaled1 = input1.apply((Int32(a) - zeroPoint1) << AddRequantization.leftShift)
        let scaled2 = input2.apply((Int32(b) - zeroPoint2) << AddRequantization.leftShift)
        let value = output.apply(scaled1 &+ scaled2) &+ outputZeroPoint
        return Int8(min(max(value, minimum), maximum))
    }
}

extension Int8ReferenceKernels {
    /// int8 a + b with numpy broadcasting.
    public static func add(_ a: Int8View, _ b: Int8View, requantization r: AddRequantization, output y: MutableInt8View) {
        let total = ReferenceKernels.count(y.shape)
        if total == 0 { return }
        let outDims = y.shape.dims
        let aStrides = ReferenceKernels.broadcastStrides(a.shape, rank: outDims.count)
        let bStrides = ReferenceKernels.broadcastStrides(b.shape, rank: outDims.count)
        var index = [Int](repeating: 0, count: outDims.count)
        for o in 0..<total {
            var aOffset = 0
            var bOffset = 0
            for axis in 0..<outDims.count {
                aOffset += index[axis] * aStrides[axis]
                bOffset += index[axis] * bStrides[axis]
            }
            y.data[o] = r.apply(a.data[aOffset], b.data[bOffset])
            _ = ReferenceKernels.advance(&index, dims: outDims)
        }
    }
}
