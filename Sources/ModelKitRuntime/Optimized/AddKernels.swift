import ModelKitCore

/// activation(a + b) for two inputs of the output's shape (the residual connection of ResNet and
/// MobileNetV2 blocks), as flat loops the compiler vectorizes, split across the pool for large
/// tensors. The reference kernel walks broadcast indices per element, several times slower;
/// broadcasting adds stay on it. Immutable after init; each task writes its own slice.
final class SameShapeAdd: @unchecked Sendable {
    let a: UnsafePointer<Float>
    let b: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let count: Int
    let activation: FusedActivation
    /// Parallel tasks per run (1: on the caller's thread).
    let tasks: Int

    /// Below this many elements a split costs more than it saves.
    static let minimumParallelCount = 64 * 1024

    /// nil when the inputs broadcast.
    init?(_ a: TensorView, _ b: TensorView, activation: FusedActivation, output: MutableTensorView, threads: Int) {
        guard a.shape == output.shape, b.shape == output.shape, let count = output.shape.elementCount else { return nil }
        self.a = a.data
        self.b = b.data
        self.output = output.data
        self.count = count
        self.activation = activation
        tasks = threads > 1 && count >= SameShapeAdd.minimumParallelCount ? threads : 1
    }

    func run(_ range: Range<Int>) {
        switch activation {
        case .none:
            for i in range { output[i] = a[i] + b[i] }
        case .relu:
            for i in range {
                let sum = a[i] + b[i]
                output[i] = sum > 0 ? sum : 0
            }
        default:
            for i in range { output[i] = activation.apply(a[i] + b[i]) }
        }
    }

    func run(pool: WorkerPool?) {
        guard let pool, tasks > 1 else {
            run(0..<count)
            return
        }
        pool.run(tasks: tasks, context: Unmanaged.passUnretained(self).toOpaque()) { context, task in
            let step = Unmanaged<SameShapeAdd>.fromOpaque(context!).takeUnretainedValue()
            // Multiples of 16 floats: tasks never share a cache line.
            step.run(ParallelGemm.chunk(task, of: step.tasks, count: step.count, granule: 16))
        }
    }
}
