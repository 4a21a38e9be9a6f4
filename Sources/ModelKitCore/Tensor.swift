/// The element buffer of a tensor. Arrays are copy-on-write, so passing a tensor around is
/// cheap; the runtime copies weights once, at plan time, into its own layout.
public enum TensorStorage: Hashable, Sendable {
    case float32([Float])
    case int8([Int8])
    case uint8([UInt8])
    case int32([Int32])

    public var dtype: DType {
        switch self {
        case .float32: return .float32
        case .int8: return .int8
        case .uint8: return .uint8
        case .int32: return .int32
        }
    }

    public var count: Int {
        switch self {
        case .float32(let values): return values.count
        case .int8(let values): return values.count
        case .uint8(let values): return values.count
        case .int32(let values): return values.count
        }
    }
}

/// A constant tensor (weights, biases, statistics) held by a graph.
public struct Tensor: Hashable, Sendable {
    public var shape: Shape
    public var storage: TensorStorage
    public var quantization: QuantizationParameters?

    public init(shape: Shape, storage: TensorStorage, quantization: QuantizationParameters? = nil) {
        self.shape = shape
        self.storage = storage
        self.quantization = quantization
    }

    public init(shape: Shape, floats: [Float]) {
        self.init(shape: shape, storage: .float32(floats))
    }

    public var dtype: DType { storage.dtype }
    public var elementCount: Int { storage.count }

    /// The values as Float when the tensor is float32; nil otherwise.
    public var floats: [Float]? {
        if case .float32(let values) = storage { return values }
        return nil
    }

    public var byteCount: Int { storage.count * dtype.byteSize }
}
