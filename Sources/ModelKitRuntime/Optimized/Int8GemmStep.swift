import CModelKitKernels
import ModelKitCore

/// An int8 Conv2D (groups == 1) or Dense prepared at plan time: the weight packed once as int16
/// pairs, the per-channel multipliers and shifts in flat arrays, and the requantization fused into
/// the GEMM (`mk_igemm_requantize`). The left matrix is the input minus its zero point as int16
/// (im2col rows for a convolution), built per thread in scratch. A convolution whose widened,
/// padded image is small (a small CNN's layers) runs direct instead (`mk_conv_s8_direct`): only
/// the input rows a task needs are widened, and each window is read in place, with no im2col
/// copy (9x the input for a 3x3 kernel). A bigger spatial convolution runs direct too, a block of
/// output rows at a time. Bit-exact with `Int8ReferenceKernels`; runs on raw
/// pointers, so it allocates and retains nothing.
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
    /// Whether the convolution runs direct; then `weight` is packed for its window walk and
    /// `rowLength` is the int16 values per output channel of that packing.
    let direct: Bool
    /// A max pooling fused into a direct convolution (`output` is then the pooling's): rows are
    /// pooled pixels, each window's sums requantized once (`mk_conv_s8_direct_maxpool`).
    let maxPool: mk_pool_window?
    /// Output rows (pooled rows with a fused max pooling) per block of a direct convolution: the
    /// padded input rows a block reads are widened together into one thread's scratch.
    let directBlockRows: Int

    var pixels: Int { geometry.map { $0.oh * $0.ow } ?? 1 }
    /// Output rows per image: pixels, or pooled pixels with a fused max pooling.
    var rowsPerImage: Int { maxPool.map { $0.oh * $0.ow } ?? pixels }
    var work: Int { batch * pixels * outputs * depth }
    /// Output rows per im2col block (a multiple of the kernel's 6-row tile) for deep rows.
    static let rowsPerBlock = 60
    /// The most rows per block: with a shallow depth (MobileNetV2's 16-64-channel expansions,
    /// ResNet-50's 64-channel layers) a 60-row block spends a visible share preparing each 16-channel
    /// panel's requantization constants and tile edges (4-8% of such a GEMM on AVX2); longer blocks
    /// share that while the block stays within `blockValues`.
    static let maximumRowsPerBlock = 240
    /// int16 values a left-matrix block may take: 32 KB, an L1 data cache.
    static let blockValues = 16 * 1024
    /// Rows per im2col block of this step: `rowsPerBlock`, or more (up to `maximumRowsPerBlock`)
    /// while the block holds at most `blockValues` values.
    var blockRows: Int {
        let rows = Int8GemmStep.blockValues / max(rowLength, 1) / 6 * 6
        return min(Int8GemmStep.maximumRowsPerBlock, max(Int8GemmStep.rowsPerBlock, rows))
    }
    /// int16 scratch values one thread needs: a block of rows, or a whole image's rows when the
    /// step may split by columns (they then share one thread's block; see `columnTasks`).
    var scratchCount: Int {
        if direct, var g = geometry {
            // A fused max pooling runs whole images (`directBlockRows` is then every row).
            let paddedRows = min((directBlockRows - 1) * g.sh + (g.kh - 1) * g.dh + 1, mk_conv_s8_direct_padded_height(&g))
            return mk_conv_s8_direct_rows_count(&g, paddedRows)
        }
        return max(blockRows, geometry != nil && batch * pixels < outputs ? pixels : 0) * rowLength
    }
    /// int16 values up to which a widened padded image runs direct (64 KB: it stays in L2 with
    /// the weight panels, and a thread's scratch stays small).
    static let directImageLimit = 32 * 1024

    static func make(input: Int8View, weight: UnsafePointer<Int8>, weightShape: Shape, bias: UnsafePointer<Int32>?,
                     requantization r: Requantization, convolution: Conv2DAttributes?, output: MutableInt8View,
                     maxPool: (Pool2DAttributes, MutableInt8View)? = nil, buffers: inout [PlanBuffer]) -> Int8GemmStep? {
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
        let direct = geometry.map { Int8GemmStep.runsDirect($0) || Int8GemmStep.runsDirectInBlocks($0) } ?? false
        var walk = geometry ?? mk_conv_geometry()
        var pooling: mk_pool_window?
        if let (attributes, pooled) = maxPool {
            guard direct, let window = Int8GemmStep.fusedMaxPool(geometry: walk, attributes: attributes,
                                                                 pooledShape: pooled.shape) else { return nil }
            pooling = window
        }
        let rowLength = direct ? 2 * mk_conv_s8_direct_pairs(&walk) : 2 * mk_igemm_depth_pairs(depth)
        let packedCount = direct ? mk_conv_s8_direct_packed_count(&walk, o) : mk_igemm_packed_b_count(o, depth)
        // One block: packed weight, then multipliers and shifts.
        let buffer = PlanBuffer(bytes: packedCount * 2 + 2 * o * 4 + 64)
        buffers.append(buffer)
        let packed = buffer.base.assumingMemoryBound(to: Int16.self)
        if direct {
            mk_conv_s8_direct_pack(&walk, o, weight, packed)
        } else {
            mk_igemm_pack_b(o, depth, weight, depth, packed)
        }
        let multipliers = (buffer.base + (packedCount * 2 + 3) / 4 * 4).assumingMemoryBound(to: Int32.self)
        let shifts = multipliers + o
        for channel in 0..<o {
            multipliers[channel] = r.multipliers[channel].multiplier
            shifts[channel] = r.multipliers[channel].shift
        }
        return Int8GemmStep(input: input.data, inputZeroPoint: input.zeroPoint, output: maxPool?.1.data ?? output.data,
                            batch: input.shape[0],
                            geometry: geometry, outputs: o, depth: depth, rowLength: rowLength,
                            weight: UnsafePointer(packed),
                            requantization: mk_requantization(bias: bias, multiplier: multipliers, shift: shifts,
                                                              output_zero_point: r.outputZeroPoint, minimum: r.minimum,
                                                              maximum: r.maximum),
                            direct: direct, maxPool: pooling,
                            directBlockRows: geometry.map { Int8GemmStep.directBlockRows($0) } ?? 1)
    }

    /// Whether a convolution runs direct: its padded, widened image fits `directImageLimit`. On
    /// every path, AVX-512 included (the direct kernel runs its AVX2 form there): for images this
    /// small at batch 1 the im2col pass, the window padded to pairs and the unfused max pool cost
    /// more than the VNNI GEMM's wider multiply-adds save.
    static func runsDirect(_ geometry: mk_conv_geometry) -> Bool {
        var g = geometry
        return mk_conv_s8_direct_rows_count(&g, mk_conv_s8_direct_padded_height(&g)) <= Int8GemmStep.directImageLimit
    }

    /// Whether a spatial convolution too big for `runsDirect` runs direct a block of output rows at
    /// a time: an im2col row repeats every input value kh*kw times, and with few channels (the
    /// first layer's 3) it is widened in short spans, which costs more than the GEMM itself
    /// (AVX2, MobileNetV2's first layer: 920 -> 460 us; ResNet-50's 3x3 layers 5-15% faster). On
    /// the AVX-512 path only for short window rows: with many channels the im2col pass is cheap
    /// next to the VNNI GEMM's doubled multiply-adds, which the direct kernel lacks.
    static func runsDirectInBlocks(_ geometry: mk_conv_geometry) -> Bool {
        geometry.kh * geometry.kw > 1
            && (mk_kernels_active() < Int32(MK_KERNELS_AVX512.rawValue) || geometry.kw * geometry.c < 32)
    }

    /// Output rows per direct block: all of them when the image fits `directImageLimit`, else as
    /// many as keep the widened rows within it (at least one).
    static func directBlockRows(_ geometry: mk_conv_geometry) -> Int {
        var g = geometry
        if runsDirect(g) { return max(g.oh, 1) }
        var rows = 1
        while rows < g.oh, mk_conv_s8_direct_rows_count(&g, rows * g.sh + (g.kh - 1) * g.dh + 1) <= directImageLimit {
            rows += 1
        }
        return rows
    }

    /// The window of a max pooling the direct convolution `geometry` can take over (unpadded,
    /// windows that do not overlap), or nil.
    static func fusedMaxPool(geometry g: mk_conv_geometry, attributes a: Pool2DAttributes, pooledShape: Shape) -> mk_pool_window? {
        let pad = a.padding.resolve(height: g.oh, width: g.ow, kernel: (a.kernelH, a.kernelW), stride: (a.strideH, a.strideW))
        guard pad.top == 0, pad.left == 0 else { return nil }
        var geometry = g
        var window = mk_pool_window(kh: a.kernelH, kw: a.kernelW, sh: a.strideH, sw: a.strideW, oh: pooledShape[1],
                                    ow: pooledShape[2])
        return mk_conv_s8_direct_maxpool_supported(&geometry, &window) != 0 ? window : nil
    }

    /// The direct convolution geometry of an int8 Conv2D (groups == 1), for the plan's fusion check.
    static func geometry(input: Shape, weight: Shape, attributes a: Conv2DAttributes, output: Shape) -> mk_conv_geometry? {
        guard a.groups == 1, input.rank == 4, weight.rank == 4, output.rank == 4 else { return nil }
        let (h, w, c, kh, kw) = (input[1], input[2], input[3], weight[1], weight[2])
        let pad = a.padding.resolve(height: h, width: w, kernel: (kh, kw), stride: (a.strideH, a.strideW),
                                    dilation: (a.dilationH, a.dilationW))
        return mk_conv_geometry(h: h, w: w, c: c, kh: kh, kw: kw, sh: a.strideH, sw: a.strideW, dh: a.dilationH,
                                dw: a.dilationW, pad_top: pad.top, pad_left: pad.left, oh: output[1], ow: output[2])
    }

    /// The requantization parameters of output columns from `column` on.
    private func requantization(fromColumn column: Int) -> mk_requantization {
        var r = requantization
        r.bias = r.bias.map { $0 + column }
        r.multiplier = r.multiplier + column
        r.shift = r.shift + column
        return r
    }

    /// Output rows `rows` and columns `columns` (from a multiple of the kernel's 16-column panel)
    /// of the flattened [batch × pixels, outputs] result, `blockRows` rows at a time.
    func run(rows: Range<Int>, columns: Range<Int>? = nil, scratch: UnsafeMutablePointer<Int16>) {
        let columns = columns ?? 0..<outputs
        guard !columns.isEmpty else { return }
        let first = columns.lowerBound
        var r = requantization(fromColumn: first)
        if direct, var g = geometry {
            runDirect(rows: rows, columns: columns, geometry: &g, requantization: &r, scratch: scratch)
            return
        }
        var row = rows.lowerBound
        while row < rows.upperBound {
            var count = min(blockRows, rows.upperBound - row)
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

    /// The direct convolution of `rows`, per image: the padded input rows their windows cover
    /// widened into `scratch`, then the pixels.
    private func runDirect(rows: Range<Int>, columns: Range<Int>, geometry g: inout mk_conv_geometry,
                           requantization r: inout mk_requantization, scratch: UnsafeMutablePointer<Int16>) {
        let path = mk_kernels_active()
        var row = rows.lowerBound
        while row < rows.upperBound {
            let image = row / rowsPerImage
            var window = maxPool ?? mk_pool_window(kh: 1, kw: 1, sh: 1, sw: 1, oh: g.oh, ow: g.ow)
            let p0 = row - image * rowsPerImage
            let blockEnd = min(rowsPerImage, (p0 / window.ow + directBlockRows) * window.ow)
            let p1 = min(blockEnd, rows.upperBound - image * rowsPerImage)
            // The convolution output rows these rows read, then the padded input rows of those.
            let (first, last) = (p0 / window.ow * window.sh, (p1 - 1) / window.ow * window.sh + window.kh - 1)
            let (y0, y1) = (first * g.sh, last * g.sh + (g.kh - 1) * g.dh + 1)
            mk_conv_s8_direct_widen(path, &g, input + image * g.h * g.w * g.c, inputZeroPoint, y0, y1, scratch)
            let (weight, output) = (weight + columns.lowerBound * rowLength, output + row * outputs + columns.lowerBound)
            if maxPool != nil {
                mk_conv_s8_direct_maxpool(path, &g, &window, scratch, y0, p0, p1, columns.count, weight, &r, output, outputs)
            } else {
                mk_conv_s8_direct(path, &g, scratch, y0, p0, p1, columns.count, weight, &r, output, outputs)
            }
            row += p1 - p0
        }
    }

    /// Output columns `columns` (whole 16-channel panels from the start) of image `image`'s rows,
    /// whose widened left matrix is `left`.
    func run(image: Int, columns: Range<Int>, left: UnsafePointer<Int16>) {
        guard !columns.isEmpty else { return }
        let start = columns.lowerBound
        var r = requantization(fromColumn: start)
        // `blockRows` rows at a time, so a block of the left matrix stays in cache across the
        // column panels (the kernel walks every row for each panel).
        var row = 0
        while row < pixels {
            let count = min(blockRows, pixels - row)
            mk_igemm_requantize(count, columns.count, depth, left + row * rowLength, rowLength,
                                weight + start * rowLength, &r, output + (image * pixels + row) * outputs + start,
                                outputs)
            row += count
        }
    }

    /// How many tasks split the output columns, or nil to split rows: as for the float convolution,
    /// few rows (over the whole batch) and many columns split by columns, so each thread streams
    /// part of the weight, in as many tasks as `ParallelGemm.columnTaskCount` gives (each direct
    /// task widens its own input rows, a small cost next to its share of the multiply-adds).
    func columnTasks(threads: Int) -> Int? {
        guard geometry != nil, batch * pixels < outputs else { return nil }
        let tasks = ParallelGemm.columnTaskCount(columns: outputs, panel: Int8GemmStep.panel, threads: threads)
        return tasks > 1 ? tasks : nil
    }

    /// Output channels per packed weight panel.
    static let panel = 16

    /// The whole step, split by rows across `pool` when it is big enough to pay for the wake-up.
    /// `scratch` holds one block of `scratchStride` int16 values per pool thread; each task uses its thread's.
    func run(scratch: UnsafeMutablePointer<Int16>, scratchStride: Int, pool: WorkerPool?) {
        let rows = batch * rowsPerImage
        guard let pool, pool.threadCount > 1, ParallelGemm.weightedWork(multiplyAdds: work, rows: rows) >= pool.minimumWork else {
            run(rows: 0..<rows, scratch: scratch)
            return
        }
        let directColumnTasks = direct ? columnTasks(threads: pool.threadCount) : nil
        if rows < 16 || directColumnTasks != nil {
            // Too few rows to share out (a Dense at batch 1) or a direct convolution with more
            // columns than rows: each thread takes whole 16-column panels of every row (a direct
            // task widens its own input rows, so nothing is shared).
            guard directColumnTasks != nil || outputs >= 32 * pool.threadCount else {
                run(rows: 0..<rows, scratch: scratch)
                return
            }
            var job = (step: self, scratch: scratch, stride: scratchStride, rows: rows,
                       tasks: directColumnTasks ?? ParallelGemm.columnTaskCount(columns: outputs, panel: Int8GemmStep.panel,
                                                                                threads: pool.threadCount))
            withUnsafeMutablePointer(to: &job) { job in
                pool.run(tasks: job.pointee.tasks, context: job) { context, task, thread in
                    let job = context!.assumingMemoryBound(to: (step: Int8GemmStep, scratch: UnsafeMutablePointer<Int16>,
                                                                stride: Int, rows: Int, tasks: Int).self)
                    let step = job.pointee.step
                    step.run(rows: 0..<job.pointee.rows,
                             columns: ParallelGemm.chunk(task, of: job.pointee.tasks, count: step.outputs, granule: Int8GemmStep.panel),
                             scratch: job.pointee.scratch + thread * job.pointee.stride)
                }
            }
            return
        }
        if let tasks = columnTasks(threads: pool.threadCount) {
            runSplittingColumns(tasks: tasks, scratch: scratch, pool: pool)
            return
        }
        // Each task im2cols one block of rows at a time into its thread's scratch.
        var job = (step: self, scratch: scratch, stride: scratchStride, rows: rows,
                   tasks: ParallelGemm.taskCount(rows: rows, threads: pool.threadCount,
                                                 weightBytes: outputs * rowLength * MemoryLayout<Int16>.stride))
        withUnsafeMutablePointer(to: &job) { job in
            pool.run(tasks: job.pointee.tasks, context: job) { context, task, thread in
                let job = context!.assumingMemoryBound(to: (step: Int8GemmStep, scratch: UnsafeMutablePointer<Int16>,
                                                            stride: Int, rows: Int, tasks: Int).self)
                let range = ParallelGemm.chunk(task, of: job.pointee.tasks, count: job.pointee.rows, granule: 6)
                job.pointee.step.run(rows: range, scratch: job.pointee.scratch + thread * job.pointee.stride)
            }
        }
    }

    /// Per image: its widened rows split by rows into the shared scratch (`scratchCount` holds an
    /// image's rows), then the GEMM split by output columns.
    private func runSplittingColumns(tasks: Int, scratch: UnsafeMutablePointer<Int16>, pool: WorkerPool) {
        var job = Int8ColumnJob(step: self, scratch: scratch, image: 0, tasks: tasks, widenTasks: pool.threadCount)
        withUnsafeMutablePointer(to: &job) { job in
            for image in 0..<batch {
                job.pointee.image = image
                pool.run(tasks: job.pointee.widenTasks, context: job) { context, task in
                    let job = context!.assumingMemoryBound(to: Int8ColumnJob.self).pointee
                    let step = job.step
                    let rows = ParallelGemm.chunk(task, of: job.widenTasks, count: step.pixels, granule: 1)
                    // Only convolutions split by columns (see columnTasks).
                    guard !rows.isEmpty, var g = step.geometry else { return }
                    mk_im2col_i8_widen(&g, step.input + job.image * g.h * g.w * g.c, rows.lowerBound, rows.upperBound,
                                       step.inputZeroPoint, job.scratch + rows.lowerBound * step.rowLength,
                                       step.rowLength)
                }
                pool.run(tasks: tasks, context: job) { context, task in
                    let job = context!.assumingMemoryBound(to: Int8ColumnJob.self).pointee
                    let columns = ParallelGemm.chunk(task, of: job.tasks, count: job.step.outputs,
                                                     granule: Int8GemmStep.panel)
                    job.step.run(image: job.image, columns: columns, left: job.scratch)
                }
            }
        }
    }
}

/// What the tasks of a column-split int8 GEMM share.
private struct Int8ColumnJob {
    let step: Int8GemmStep
    let scratch: UnsafeMutablePointer<Int16>
    var image: Int
    /// Tasks of the GEMM (column ranges) and of the widening pass (row ranges).
    let tasks: Int
    let widenTasks: Int
}
