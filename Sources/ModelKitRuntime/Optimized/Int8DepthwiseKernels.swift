import CModelKitKernels
import ModelKitCore

/// An int8 depthwise Conv2D step (groups == C) with its weights repacked at plan time. The C kernel
/// sums (q − z)·w exactly in int32 for one output row; the shared `Int8GemmKernels.finish` adds the
/// bias and requantizes, so results are bit-exact with `Int8ReferenceKernels.conv2D`.
/// Immutable after init; each task writes only its output rows and its own accumulator row.
final class Int8DepthwiseConv2D: @unchecked Sendable {
    let input: Int8View
    let output: MutableInt8View
    let bias: UnsafePointer<Int32>?
    let requantization: Requantization
    let geometry: mk_depthwise_geometry
    let rows: Int
    /// Parallel tasks per run; task t uses accumulator row t of the scratch.
    let tasks: Int
    private let weight: UnsafeMutablePointer<Int8>
    /// The zero-point correction is inside the kernel (padding must contribute nothing), so
    /// `finish` gets zero row sums.
    private let zeroSums: [Int32]

    init(input: Int8View, weight: UnsafePointer<Int8>, weightShape: Shape, bias: UnsafePointer<Int32>?,
         attributes: Conv2DAttributes, requantization: Requantization, output: MutableInt8View, threads: Int) {
        self.input = input
        self.output = output
        self.bias = bias
        self.requantization = requantization
        geometry = Depthwise.geometry(input: input.shape, weight: weightShape, output: output.shape, attributes: attributes)
        rows = output.shape[0] * output.shape[1]
        let taps = weightShape[1] * weightShape[2]
        // One task per thread: each needs its own accumulator row.
        tasks = min(Depthwise.taskCount(rows: rows, workPerRow: geometry.ow * geometry.c * taps, threads: threads), threads)
        self.weight = .allocate(capacity: taps * geometry.c)
        Depthwise.repack(weight, channels: geometry.c, taps: taps, into: self.weight)
        zeroSums = [Int32](repeating: 0, count: geometry.c)
    }

    deinit { weight.deallocate() }

    /// int32 accumulators the step needs: one output row per task.
    var accumulatorCount: Int { tasks * geometry.ow * geometry.c }

    func run(rows range: Range<Int>, accumulators: UnsafeMutablePointer<Int32>, path: Int32 = mk_kernels_active()) {
        let rowSize = geometry.ow * geometry.c
        withUnsafePointer(to: geometry) { geometry in
            for row in range {
                let (image, oy) = row.quotientAndRemainder(dividingBy: geometry.pointee.oh)
                mk_depthwise_conv2d_s8(path, geometry, image, oy, input.data, input.zeroPoint, weight,
                                       accumulators)
                Int8GemmKernels.finish(accumulators, rows: geometry.pointee.ow, outputs: geometry.pointee.c, bias: bias,
                                       rowSums: zeroSums, inputZeroPoint: 0, requantization: requantization,
                                       output: output.data + row * rowSize)
            }
        }
    }

    /// `accumulators` holds `accumulatorCount` values.
    func run(pool: WorkerPool?, accumulators: UnsafeMutablePointer<Int32>, path: Int32 = mk_kernels_active()) {
        guard let pool, tasks > 1 else {
            run(rows: 0..<rows, accumulators: accumulators, path: path)
            return
        }
        var job = (step: Unmanaged.passUnretained(self), accumulators: accumulators, path: path)
        withUnsafeMutablePointer(to: &job) { job in
            pool.run(tasks: tasks, context: job) { context, task in
                let job = context!.assumingMemoryBound(to: (step: Unmanaged<Int8DepthwiseConv2D>,
                                                            accumulators: UnsafeMutablePointer<Int32>, path: Int32).self).pointee
                let step = job.step.takeUnretainedValue()
                step.run(rows: ParallelGemm.chunk(task, of: step.tasks, count: step.rows, granule: 1),
                         accumulators: job.accumulators + task * step.geometry.ow * step.geometry.c, path: job.path)
            }
        }
    }
}
