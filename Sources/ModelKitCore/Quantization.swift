/// Affine quantization: real = scale * (q - zeroPoint). Per-tensor when `axis` is nil
/// (one scale and zero point), per-channel along `axis` otherwise (one per channel).
public struct QuantizationParameters: Hashable, Sendable {
    public var scales: [Float]
    public var zeroPoints: [Int32]
    public var axis: Int?

    public init(scales: [Float], zeroPoints: [Int32], axis: Int? = nil) {
        self.scales = scales
        self.zeroPoints = zeroPoints
        self.axis = axis
    }

    public init(scale: Float, zeroPoint: Int32) {
        self.init(scales: [scale], zeroPoints: [zeroPoint], axis: nil)
    }

    public var isPerChannel: Bool { axis != nil }
}
