import ModelKitCore

/// A real multiplier as a Q31 fixed-point value and a power-of-two exponent:
/// real ≈ multiplier / 2^31 × 2^shift. Applied with integer arithmetic only, in the rounding
/// scheme of gemmlowp/TFLite, so every int8 kernel requantizes bit-identically.
public struct QuantizedMultiplier: Hashable, Sendable {
    public var multiplier: Int32
    public var shift: Int32

    public init(multiplier: Int32, shift: Int32) {
        self.multiplier = multiplier
        self.shift = shift
    }

    /// Splits a non-negative real multiplier; 0 (or a value too small to represent) gives 0.
    public init(_ real: Double) {
        guard real > 0, real.isFinite else {
            self.init(multiplier: 0, shift: 0)
            return
        }
        // real = fraction × 2^exponent with fraction in [0.5, 1).
        var exponent = Int32(real.exponent) + 1
        let fraction = real / Double(sign: .plus, exponent: Int(exponent), significand: 1)
        var q = Int64((fraction * Double(Int64(1) << 31)).rounded())
        if q == Int64(1) << 31 {
            q /= 2
            exponent += 1
        }
        if exponent < -31 {
            self.init(multiplier: 0, shift: 0)
        } else {
            self.init(multiplier: Int32(q), shift: min(exponent, 30))
        }
    }

    /// round(x × real), saturating.
    @inline(__always)
    public func apply(_ x: Int32) -> Int32 {
        let left = shift > 0 ? shift : 0
        let right = shift > 0 ? 0 : -shift
        let (shifted, overflow) = x.multipliedReportingOverflow(by: Int32(1) << left)
        let value = overflow ? (x > 0 ? Int32.max : Int32.min) : shifted
        return FixedPoint.roundingDivideByPowerOfTwo(FixedPoint.saturatingRoundingDoublingHighMul(value, multiplier), right)
    }
}

/// gemmlowp's fixed-point primitives.
enum FixedPoint {
    /// (a × b × 2) / 2^32, rounded to nearest; saturates the single overflow case.
    @inline(__always)
    static func saturatingRoundingDoublingHighMul(_ a: Int32, _ b: Int32) -> Int32 {
        if a == Int32.min && b == Int32.min { return Int32.max }
        let product = Int64(a) * Int64(b)
        let nudge: Int64 = product >= 0 ? (1 << 30) : (1 - (1 << 30))
        return Int32(truncatingIfNeeded: (product + nudge) / (Int64(1) << 31))
    }

    /// x / 2^exponent rounded to nearest, ties away from zero.
    @inline(__always)
    static func roundingDivideByPowerOfTwo(_ x: Int32, _ exponent: Int32) -> Int32 {
        guard exponent > 0 else { return x }
        let mask = (Int32(1) << exponent) - 1
        let remainder = x & mask
        let threshold = (mask >> 1) + (x < 0 ? 1 : 0)
        return (x >> exponent) + (remainder > threshold ? 1 : 0)
    }
}

/// Everything needed to turn an int32 accumulator of one output channel into an int8 output:
/// per-channel multipliers (input scale × weight scale / output scale), the output zero point,
/// and the clamp the fused activation becomes.
public struct Requantization: Sendable {
    public var multipliers: [QuantizedMultiplier]
    public var outputZeroPoint: Int32
    public var minimum: Int32
    public var maximum: Int32

    public init(inputScale: Float, weightScales: [Float], outputScale: Float, outputZeroPoint: Int32,
                activation: FusedActivation) {
        multipliers = weightScales.map {
            QuantizedMultiplier(Double(inputScale) * Double($0) / Double(outputScale))
        }
        self.outputZeroPoint = outputZeroPoint
        (minimum, maximum) = Requantization.clamp(activation, scale: outputScale, zeroPoint: outputZeroPoint)
    }

    /// The int8 range a fused activation allows: ReLU cuts at the zero point, Clip at its bounds.
    public static func clamp(_ activation: FusedActivation, scale: Float, zeroPoint: Int32) -> (Int32, Int32) {
        func quantized(_ value: Float) -> Int32 {
            let q = (value / scale).rounded() + Float(zeroPoint)
            if !(q >= -128) { return -128 }
            if !(q <= 127) { return 127 }
            return Int32(q)
        }
        switch activation {
        case .relu: return (max(-128, zeroPoint), 127)
        case .clip(let lo, let hi): return (quantized(lo), quantized(hi))
        case .none, .leakyRelu: return (-128, 127)
        }
    }

    @inline(__always)
    public func apply(_ accumulator: Int32, channel: Int) -> Int8 {
        let value = multipliers[channel].apply(accumulator) &+ outputZeroPoint
        return Int8(min(max(value, minimum), maximum))
    }
}
