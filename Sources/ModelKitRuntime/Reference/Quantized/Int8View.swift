import ModelKitCore

/// A borrowed, read-only view of an int8 tensor (row-major, NHWC for activations) with its
/// per-tensor quantization: real = scale × (q − zeroPoint).
public struct Int8View {
    public let data: UnsafePointer<Int8>
    public let shape: Shape
    public let scale: Float
    public let zeroPoint: Int32

    public init(_ data: UnsafePointer<Int8>, _ shape: Shape, scale: Float, zeroPoint: Int32) {
        self.data = data
        self.shape = shape
        self.scale = scale
        self.zeroPoint = zeroPoint
    }
}

/// A borrowed, writable int8 view; kernels write every element of it.
public struct MutableInt8View {
    public let data: UnsafeMutablePointer<Int8>
    public let shape: Shape
    public let scale: Float
    public let zeroPoint: Int32

    public init(_ data: UnsafeMutablePointer<Int8>, _ shape: Shape, scale: Float, zeroPoint: Int32) {
        self.data = data
        self.shape = shape
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    public var readOnly: Int8View { Int8View(UnsafePointer(data), shape, scale: scale, zeroPoint: zeroPoint) }
}
