import ModelKitCore

/// A borrowed, read-only view of a float tensor in row-major order (NHWC for activations).
/// The memory belongs to the caller (the arena, a weight buffer or a test array) and must
/// outlive the kernel call.
public struct TensorView {
    public let data: UnsafePointer<Float>
    public let shape: Shape

    public init(_ data: UnsafePointer<Float>, _ shape: Shape) {
        self.data = data
        self.shape = shape
    }
}

/// A borrowed, writable view of a float tensor; kernels write every element of it.
public struct MutableTensorView {
    public let data: UnsafeMutablePointer<Float>
    public let shape: Shape

    public init(_ data: UnsafeMutablePointer<Float>, _ shape: Shape) {
        self.data = data
        self.shape = shape
    }

    public var readOnly: TensorView { TensorView(UnsafePointer(data), shape) }
}
