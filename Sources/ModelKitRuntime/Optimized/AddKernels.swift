import CModelKitKernels
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
        tasks = ParallelGemm.elementwiseTaskCount(count: count, threads: threads, minimumCount: SameShapeAdd.minimumParallelCount)
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

/// int8 Add of two same-shaped inputs through the C kernel (AVX2 or portable), bit-exact with
/// `Int8ReferenceKernels.add`, which walks broadcast indices per element and stays the kernel for
/// broadcasting adds.
enum Int8SameShapeAdd {
    static func applies(_ a: Int8View, _ b: Int8View, output: MutableInt8View) -> Bool {
        a.shape == output.shape && b.shape == output.shape
    }

    static func parameters(_ r: AddRequantization) -> mk_add_s8_params {
        mk_add_s8_params(zero_point1: r.zeroPoint1, zero_point2: r.zeroPoint2, left_shift: AddRequantization.leftShift,
                         multiplier1: r.input1.multiplier, shift1: r.input1.shift, multiplier2: r.input2.multiplier,
                         shift2: r.input2.shift, output_multiplier: r.output.multiplier, output_shift: r.output.shift,
                         output_zero_point: r.outputZeroPoint, minimum: r.minimum, maximum: r.maximum)
    }

    /// Below this many values a split across the pool costs more than it saves (the AVX2 kernel
    /// takes about 1 ns per value).
    static let minimumParallelCount = 64 * 1024

    /// The addition, split into contiguous slices across the pool when it is big enough
    /// (ResNet-50's first-stage residual adds are 800K values, ~0.7 ms on one core). Each value is
    /// computed alone, so the split changes no result.
    static func run(_ a: Int8View, _ b: Int8View, requantization r: AddRequantization, output y: MutableInt8View,
                    path: Int32 = mk_kernels_active(), pool: WorkerPool? = nil,
                    minimumParallelCount: Int = Int8SameShapeAdd.minimumParallelCount) {
        let count = y.shape.elementCount ?? 0
        // Several slices per thread, claimed dynamically, so a thread run late does not hold up the rest.
        let tasks = ParallelGemm.elementwiseTaskCount(count: count, threads: pool?.threadCount ?? 1,
                                                      minimumCount: minimumParallelCount)
        var job = (a: a.data, b: b.data, y: y.data, count: count, parameters: parameters(r), path: path, tasks: tasks)
        guard let pool, tasks > 1 else {
            mk_add_s8(path, job.count, job.a, job.b, &job.parameters, job.y)
            return
        }
        withUnsafeMutablePointer(to: &job) { job in
            pool.run(tasks: job.pointee.tasks, context: job) { context, task in
                let job = context!.assumingMemoryBound(to: (a: UnsafePointer<Int8>, b: UnsafePointer<Int8>,
                                                            y: UnsafeMutablePointer<Int8>, count: Int,
                                                            parameters: mk_add_s8_params, path: Int32, tasks: Int).self)
                // Multiples of 64 values: tasks never share a cache line of the output.
                let range = ParallelGemm.chunk(task, of: job.pointee.tasks, count: job.pointee.count, granule: 64)
                guard !range.isEmpty else { return }
                mk_add_s8(job.pointee.path, range.count, job.pointee.a + range.lowerBound, job.pointee.b + range.lowerBound,
                          &job.pointee.parameters, job.pointee.y + range.lowerBound)
            }
        }
    }
}
