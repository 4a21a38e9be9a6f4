import CModelKitKernels
import ModelKitCore

/// A float Dense prepared at plan time: weights packed once, bias and ReLU in the GEMM epilogue.
/// Small weights and small batches go to the row GEMM (no 6-row tile wasted on a batch of 1),
/// large weights at larger batches to the cache-blocked GEMM.
struct FloatDenseStep {
    let input: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let batch: Int
    let depth: Int
    let outputs: Int
    let weight: UnsafePointer<Float>
    let bias: UnsafePointer<Float>?
    let activation: FusedActivation
    let path: Int32
    /// Output columns per packed panel: column splits must fall on panel bounds.
    let panel: Int
    /// Whether `weight` is packed for mk_rowgemm_dense rather than mk_sgemm_packed_clamp.
    let rowGemm: Bool

    /// Weight floats up to which the row GEMM serves (it reads all of them per 6 rows; see
    /// FloatConv2DStep.directWeightLimit).
    static let rowGemmWeightLimit = 64 * 1024
    /// Batches below this many rows (the blocked GEMM's register tile) take the row GEMM whatever
    /// the weight size: it streams the weights once per run all the same, and does not compute a
    /// 6-row tile for one row. MobileNetV2's 1280x1000 classifier at batch 1: 145 us vs 330 us
    /// with the weights in cache, 355 us vs 690 us without.
    static let rowGemmBatchLimit = 6

    static func make(input: TensorView, weight: TensorView, bias: TensorView?, activation: FusedActivation,
                     output: MutableTensorView, buffers: inout [PlanBuffer]) -> FloatDenseStep {
        let (n, k, o) = (input.shape[0], input.shape[1], weight.shape[0])
        let path = mk_kernels_active()
        let rowGemm = o * k <= rowGemmWeightLimit || n < rowGemmBatchLimit
        let count = rowGemm ? mk_rowgemm_packed_count(o, k) : mk_sgemm_packed_b_count(path, o, k)
        let buffer = PlanBuffer(bytes: count * MemoryLayout<Float>.stride)
        let floats = buffer.base.assumingMemoryBound(to: Float.self)
        if rowGemm {
            mk_rowgemm_pack(o, k, weight.data, k, floats)
        } else {
            mk_sgemm_pack_b(path, o, k, weight.data, k, floats)
        }
        buffers.append(buffer)
        return FloatDenseStep(input: input.data, output: output.data, batch: n, depth: k, outputs: o,
                              weight: UnsafePointer(floats), bias: bias?.data, activation: activation, path: path,
                              panel: rowGemm ? mk_rowgemm_packed_count(1, 1) : mk_sgemm_packed_b_count(path, 1, 1),
                              rowGemm: rowGemm)
    }

    /// Rows `rows` and columns `columns` (a multiple of `panel` from the start) of the output.
    func run(rows: Range<Int>, columns: Range<Int>) {
        guard !rows.isEmpty, !columns.isEmpty else { return }
        let clamp = GemmClamp(activation)
        let (a, b) = (input + rows.lowerBound * depth, weight + columns.lowerBound * depth)
        let c = output + rows.lowerBound * outputs + columns.lowerBound
        if rowGemm {
            mk_rowgemm_dense(path, rows.count, columns.count, depth, a, depth, b, bias.map { $0 + columns.lowerBound },
                             clamp.on, clamp.lo, clamp.hi, c, outputs)
        } else {
            mk_sgemm_packed_clamp(path, rows.count, columns.count, depth, a, depth, b, c, outputs,
                                  bias.map { $0 + columns.lowerBound }, clamp.on, clamp.lo, clamp.hi)
        }
        if !clamp.fusesActivation {
            for row in rows {
                let line = output + row * outputs
                for column in columns { line[column] = activation.apply(line[column]) }
            }
        }
    }

    /// The whole step, split by output columns (wide layers) or rows (big batches) across `pool`
    /// when it is big enough to pay for the wake-up.
    func run(pool: WorkerPool?) {
        guard let pool, pool.threadCount > 1,
              ParallelGemm.weightedWork(multiplyAdds: batch * depth * outputs, rows: batch) >= pool.minimumWork,
              outputs >= 2 * panel || batch >= 2 * pool.threadCount else {
            run(rows: 0..<batch, columns: 0..<outputs)
            return
        }
        let splitsRows = batch >= 2 * pool.threadCount
        let tasks = splitsRows ? pool.threadCount
            : max(1, ParallelGemm.columnTaskCount(columns: outputs, panel: panel, threads: pool.threadCount))
        var job = (step: self, tasks: tasks, splitsRows: splitsRows)
        withUnsafeMutablePointer(to: &job) { job in
            pool.run(tasks: job.pointee.tasks, context: job) { context, task in
                let job = context!.assumingMemoryBound(to: (step: FloatDenseStep, tasks: Int, splitsRows: Bool).self)
                let step = job.pointee.step
                if job.pointee.splitsRows {
                    step.run(rows: ParallelGemm.chunk(task, of: job.pointee.tasks, count: step.batch, granule: 4),
                             columns: 0..<step.outputs)
                } else {
                    step.run(rows: 0..<step.batch,
                             columns: ParallelGemm.chunk(task, of: job.pointee.tasks, count: step.outputs, granule: step.panel))
                }
            }
        }
    }
}
