import CModelKitKernels
import ModelKitCore

/// An int8 Conv2D (groups == 1) or Dense prepared at plan time: the weight packed once as int16
/// pairs, the per-channel multipliers and shifts in flat arrays, and the requantization fused into
/// the GEMM (`mk_igemm_requantize`). The left matrix is the input minus its zero point as int16
/// (im2col rows for a convolution), built per thread in scratch. Bit-exact with
/// `Int8ReferenceKernels`; runs on raw pointers, so it allocates and retains nothing.
struct Int8GemmStep {
    let input: UnsafePointer<Int8>
    let inputZeroPoint: Int32
    let output: UnsafeMutablePointer<Int8>
    let batch: Int
    /// The window walk of a convolution; nil for a Dense (rows are the batch).
    let geometry: mk_conv_geometry?
    let outputs: Int
    let depth: Int
    /// int16 values per left-matrix row (the depth rounded up to even).
    let rowLength: Int
    let weight: UnsafePointer<Int16>
    var requantization: mk_requantization

    var pixels: Int { geometry.map { $0.oh * $0.ow } ?? 1 }
    var work: Int { batch * pixels * outputs * depth }
    /// Output rows per im2col block (a multiple of the kernel's 6-row tile).
    static let rowsPerBlock = 60
    /// int16 scratch values one thread needs.
    var scratchCount: Int { Int8GemmStep.rowsPerBlock * rowLength }

    static func make(input: Int8View, weight: UnsafePointer<Int8>, weightShape: Shape, bias: UnsafePointer<Int32>?,
                     requantization r: Requantization, convolution: Conv2DAttributes?, output: MutableInt8View,
                     buffers: inout [PlanBuffer]) -> Int8GemmStep? {
        let o = weightShape[0]
        let depth = (weightShape.elementCount ?? 0) / max(o, 1)
        var geometry: mk_conv_geometry?
        if let a = convolution {
            guard a.groups == 1 else { return nil }
            let (h, w, c) = (input.shape[1], input.shape[2], input.shape[3])
            let (kh, kw) = (weightShape[1], weightShape[2])
            let pad = a.padding.resolve(height: h, width: w, kernel: (kh, kw), stride: (a.strideH, a.strideW),
                                        dilation: (a.dilationH, a.dilationW))
            geometry = mk_conv_geometry(h: h, w: w, c: c, kh: kh, kw: kw, sh: a.strideH, sw: a.strideW, dh: a.dilationH,
                                        dw: a.dilationW, pad_top: pad.top, pad_left: pad.left,
                                        oh: output.shape[1], ow: output.shape[2])
        }
        let packedCount = mk_igemm_packed_b_count(o, depth)
        // One block: packed weight, then multipliers and shifts.
        let buffer = PlanBuffer(bytes: packedCount * 2 + 2 * o * 4 + 64)
        buffers.append(buffer)
        let packed = buffer.base.assumingMemoryBound(to: Int16.self)
        mk_igemm_pack_b(o, depth, weight, depth, packed)
        let multipliers = (buffer.base + (packedCount * 2 + 3) / 4 * 4).assumingMemoryBound(to: Int32.self)
        let shifts = multipliers + o
        for channel in 0..<o {
            multipliers[channel] = r.multipliers[channel].multiplier
            shifts[channel] = r.multipliers[channel].shift
        }
        return Int8GemmStep(input: input.data, inputZeroPoint: input.zeroPoint, output: output.data, batch: input.shape[0],
                            geometry: geometry, outputs: o, depth: depth, rowLength: 2 * mk_igemm_depth_pairs(depth),
                            weight: UnsafePointer(packed),
                            requantization: mk_requantization(bias: bias, multiplier: multipliers, shift: shifts,
                                                              output_zero_point: r.outputZeroPoint, minimum: r.minimum,
                                                              maximum: r.maximum))
    }

    /// Output rows `rows` and columns `columns` (from a multiple of the kernel's 16-column panel)
    /// of the flattened [batch × pixels, outputs] result, `rowsPerBlock` rows at a time.
    func run(rows: Range<Int>, columns: Range<Int>? = nil, scratch: UnsafeMutablePointer<Int16>) {
        let columns = columns ?? 0..<outputs
        guard !columns.isEmpty else { return }
        var row = rows.lowerBound
        var r = requantization
        let first = columns.lowerBound
        r.bias = r.bias.map { $0 + first }
        r.multiplier = r.multiplier + first
        r.shift = r.shift + first
        while row < rows.upperBound {
            var count = min(Int8GemmStep.rowsPerBlock, rows.upperBound - row)
            if var g = geometry {
                let image = row / pixels
                let first = row - image * pixels
                count = min(count, pixels - first)
                mk_im2col_i8_widen(&g, input + image * g.h * g.w * g.c, first, first + count, inputZeroPoint, scratch,
                                   rowLength)
            } else {
                mk_widen_rows_i8(count, depth, input + row * depth, depth, inputZeroPoint, scratch, rowLength)
            }
            mk_igemm_requantize(count, columns.count, depth, scratch, rowLength, weight + first * rowLength, &r,
                                output + row * outputs + first, outputs)
            row += count
        }
    }

    /// The whole step, split by rows across `pool` when it is big enough to pay for the wake-up.
    /// `scratch` holds one block of `scratchStride` int16 values per pool thread; each task uses its thread's.
    func run(scratch: UnsafeMutablePointer<Int16>, scratchStride: Int, pool: WorkerPool?) {
        let rows = batch * pixels
        guard let pool, pool.threadCount > 1, ParallelGemm.weightedWork(multiplyAdds: work, rows: rows) >= pool.minimumWork else {
            run(rows: 0..<rows, scratch: scratch)
            return
        }
        if rows < 16 {
            // Too few rows to share out (a Dense at batch 1): each thread takes whole 16-column panels.
            guard outputs >= 32 * pool.threadCount else {
                run(rows: 0..<rows, scratch: scratch)
                return
            }
            var job = (step: self, scratch: scratch, stride: scratchStride, rows: rows, tasks: pool.threadCount)
            withUnsafeMutablePointer(to: &job) { job in
                pool.run(tasks: job.pointee.tasks, context: job) { context, task, thread in
                    let job = context!.assumingMemoryBound(to: (step: Int8GemmStep, scratch: UnsafeMutablePointer<Int16>,
                                                                stride: Int, rows: Int, tasks: Int).self)
                    let step = job.pointee.step
                    step.run(rows: 0..<job.pointee.rows,
                             columns: ParallelGemm.chunk(task, of: job.pointee.tasks, count: step.outputs, granule: 16),
                             scratch: job.pointee.scratch + thread * job.pointee.stride)
                }
            }
            return
        }
        var job = (step: self, scratch: scratch, stride: scratchStride, rows: rows,
                   tasks: ParallelGemm.taskCount(rows: rows, threads: pool.threadCount))
        withUnsafeMutablePointer(to: &job) { job in
            pool.run(tasks: job.pointee.tasks, context: job) { context, task, thread in
                let job = context!.assumingMemoryBound(to: (step: Int8GemmStep, scratch: UnsafeMutablePointer<Int16>,
                                                            stride: Int, rows: Int, tasks: Int).self)
                let range = ParallelGemm.chunk(task, of: job.pointee.tasks, count: job.pointee.rows, granule: 6)
                job.pointee.step.run(rows: range, scratch: job.pointee.scratch + thread * job.pointee.stride)
            }
        }
    }
}
