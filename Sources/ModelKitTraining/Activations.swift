/// Elementwise activation plumbing shared by ReLU, ReLU6, LeakyReLU, Sigmoid and Tanh.
/// Each keeps the tensor its derivative needs (input or output) from the training forward pass.
/// Large tensors are split into contiguous chunks across the worker threads.
enum Elementwise {
    static let parallelThreshold = 65_536

    static func parts(_ count: Int) -> Int {
        count >= parallelThreshold ? Parallelism.threadCount : 1
    }

    @inline(__always)
    static func map(_ x: Batch, _ f: @escaping @Sendable (Float) -> Float) -> Batch {
        Batch.uninitialized(x.shape) { out in
            x.values.withUnsafeBufferPointer { input in
                guard input.count > 0 else { return }
                let src = SendableConstPointer(pointer: input.baseAddress!)
                let dst = SendablePointer(pointer: out.baseAddress!)
                let count = input.count, parts = parts(count)
                Parallelism.run(parts) { part in
                    let range = chunk(count, parts, part)
                    for i in range { dst.pointer[i] = f(src.pointer[i]) }
                }
            }
        }
    }

    /// dy * derivative(saved), elementwise.
    @inline(__always)
    static func chain(_ dy: Batch, _ saved: Batch?, _ layer: String,
                      _ derivative: @escaping @Sendable (Float) -> Float) throws -> Batch {
        guard let saved else { throw TrainingError.backwardBeforeForward(layer: layer) }
        try Check.same(dy.shape, saved.shape, layer, "output gradient vs forward output")
        return Batch.uninitialized(dy.shape) { out in
            dy.values.withUnsafeBufferPointer { g in
                saved.values.withUnsafeBufferPointer { s in
                    guard g.count > 0 else { return }
                    let gp = SendableConstPointer(pointer: g.baseAddress!)
                    let sp = SendableConstPointer(pointer: s.baseAddress!)
                    let dst = SendablePointer(pointer: out.baseAddress!)
                    let count = g.count, parts = parts(count)
                    Parallelism.run(parts) { part in
                        for i in chunk(count, parts, part) { dst.pointer[i] = gp.pointer[i] * derivative(sp.pointer[i]) }
                    }
                }
            }
        }
    }

    /// The `part`-th of `parts` nearly equal contiguous ranges of 0..<count.
    static func chunk(_ count: Int, _ parts: Int, _ part: Int) -> Range<Int> {
        (count * part / parts)..<(count * (part + 1) / parts)
    }
}
