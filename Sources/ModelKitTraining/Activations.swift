/// Elementwise activation plumbing shared by ReLU, ReLU6, LeakyReLU, Sigmoid and Tanh.
/// Each keeps the tensor its derivative needs (input or output) from the training forward pass.
enum Elementwise {
    @inline(__always)
    static func map(_ x: Batch, _ f: (Float) -> Float) -> Batch {
        Batch.uninitialized(x.shape) { out in
            x.values.withUnsafeBufferPointer { input in
                for i in 0..<input.count { out[i] = f(input[i]) }
            }
        }
    }

    /// dy * derivative(saved), elementwise.
    @inline(__always)
    static func chain(_ dy: Batch, _ saved: Batch?, _ layer: String, _ derivative: (Float) -> Float) throws -> Batch {
        guard let saved else { throw TrainingError.backwardBeforeForward(layer: layer) }
        try Check.same(dy.shape, saved.shape, layer, "output gradient vs forward output")
        return Batch.uninitialized(dy.shape) { out in
            dy.values.withUnsafeBufferPointer { g in
                saved.values.withUnsafeBufferPointer { s in
                    for i in 0..<g.count { out[i] = g[i] * derivative(s[i]) }
                }
            }
        }
    }
}
