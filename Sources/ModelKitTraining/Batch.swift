/// A dense float batch in row-major order; activations are NHWC ([N,H,W,C]) or [N,K].
public struct Batch: Hashable, Sendable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not match \(values.count) values")
        self.shape = shape
        self.values = values
    }

    public init(zeros shape: [Int]) {
        self.shape = shape
        self.values = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    /// A batch whose values are all written by `fill` (no zeroing first).
    @inline(__always)
    static func uninitialized(_ shape: [Int], _ fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows
        -> Batch {
        let count = shape.reduce(1, *)
        let values = try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try fill(buffer)
            initialized = count
        }
        return Batch(shape: shape, values: values)
    }

    public var count: Int { values.count }
    /// Number of samples (the first dimension).
    public var batchSize: Int { shape.first ?? 0 }
    /// Per-sample shape.
    public var sampleShape: [Int] { Array(shape.dropFirst()) }
}
