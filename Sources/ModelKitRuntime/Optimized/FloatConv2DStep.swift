import CModelKitKernels
import ModelKitCore

/// A float Conv2D (groups == 1) prepared at plan time: weights packed once for the GEMM, the bias
/// and ReLU applied in its epilogue, single-channel stride-1 unpadded inputs on the direct kernel.
/// Every call is on raw pointers, so a run allocates and retains nothing.
struct FloatConv2DStep {
    enum Method {
        /// kh×kw taps over a single input channel (the first layer of an image CNN).
        case directSingleChannel
        /// 1×1 stride 1: the NHWC input is already the GEMM's left matrix.
        case pointwise
        /// Unpadded spatial kernels with small weights (a small CNN): the row GEMM reads each output
        /// pixel's window in place, kh runs of kw*c inputs (no im2col copy, no A packing).
        case direct
        /// im2col rows into per-thread scratch, then the packed GEMM.
        case im2col
        /// A shallow window (the 7x7 stem over 3 channels) on the AVX2 path: the packed GEMM reads
        /// each pixel's window in place from a zero-padded band of input rows (conv_windows.c),
        /// without writing and reading back the im2col rows.
        case windows
        /// 3×3 stride 1 with many channels: Winograd F(2×2, 3×3) or F(4×4, 3×3) (winograd.c,
        /// `winogradTile`), 2.25x or 4x fewer multiply-adds, on blocks of `blockRows` tiles in
        /// per-thread scratch.
        case winograd
    }

    let method: Method
    let input: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let batch: Int
    let geometry: mk_conv_geometry
    let outputs: Int
    let depth: Int
    /// Packed for `path` (mk_rowgemm_pack for .direct; .winograd: `matrices` transformed weights packed
    /// `panelCount` floats apart; the single-channel kernel reads the plain [O, kH, kW, 1] weight).
    let weight: UnsafePointer<Float>
    let bias: UnsafePointer<Float>?
    /// The residual Add fused into the epilogue (`FloatResidualFusion`): a tensor of the output's
    /// shape the result adds to before the activation. `output` itself when the plan placed the
    /// output in the residual's memory (the GEMM accumulates onto it); otherwise each task copies
    /// its slice into the output just before the GEMM reads it back. nil: no fused Add.
    let residual: UnsafePointer<Float>?
    /// The conv's activation, or with `residual` the Add's (the conv's is none then).
    let activation: FusedActivation
    let path: Int32
    /// Output columns per packed weight panel: column splits fall on panel bounds.
    let panel: Int
    /// Floats of one packed [O, C] weight of the Winograd method.
    let panelCount: Int
    /// im2col rows built and multiplied at a time: a block that stays in L2 between the im2col
    /// writing it and the GEMM reading it (the whole image's rows, e.g. 7 MB for a 56x56 3x3
    /// convolution over 64 channels, went out to memory and came back, at half the GEMM's speed).
    /// For .winograd: tiles per block, likewise.
    let blockRows: Int
    /// Output tile size of the Winograd method (2 or 4; 0 for the others).
    let winogradTile: Int

    var pixels: Int { geometry.oh * geometry.ow }
    /// Multiply-adds of the whole step, for the parallel threshold.
    var work: Int { batch * pixels * outputs * depth }

    /// Output tiles of one image (.winograd).
    var tiles: Int { mk_winograd_tiles(Int32(winogradTile), geometry.oh, geometry.ow) }
    /// Transformed matrices per tile (.winograd): (tile + 2)², 16 or 36.
    var matrices: Int { (winogradTile + 2) * (winogradTile + 2) }

    /// Floats of scratch one thread needs: im2col rows, or a Winograd block's transformed input
    /// matrices and products.
    var scratchCount: Int {
        switch method {
        case .im2col: return pixels * depth
        case .windows: return withUnsafePointer(to: geometry) { mk_conv_windows_scratch_count($0, blockRows) }
        case .winograd: return matrices * blockRows * (geometry.c + outputs)
        default: return 0
        }
    }

    /// Weight floats up to which .direct serves: it streams the whole packed weight from L2 for
    /// every 6 output pixels, where the GEMM blocks it for L1 (256 KB; the small CNN's largest is 147 KB).
    static let directWeightLimit = 64 * 1024

    /// The input's walk for one image.
    static func geometry(input: Shape, weight: Shape, attributes a: Conv2DAttributes, output: Shape) -> mk_conv_geometry {
        let (h, w, c) = (input[1], input[2], input[3])
        let (kh, kw) = (weight[1], weight[2])
        let pad = a.padding.resolve(height: h, width: w, kernel: (kh, kw), stride: (a.strideH, a.strideW),
                                    dilation: (a.dilationH, a.dilationW))
        return mk_conv_geometry(h: h, w: w, c: c, kh: kh, kw: kw, sh: a.strideH, sw: a.strideW, dh: a.dilationH,
                                dw: a.dilationW, pad_top: pad.top, pad_left: pad.left, oh: output[1], ow: output[2])
    }

    /// The method `make` chooses for these shapes, nil for the plain loops (grouped convolutions).
    /// Shapes only, so a plan can ask before it packs anything (`FloatResidualFusion`).
    /// `residual`: whether a fused Add rides on the epilogue, which only the packed GEMM's
    /// accumulating store has (so such a convolution takes .im2col where it would take .windows).
    static func method(input: Shape, weight: Shape, attributes a: Conv2DAttributes, output: Shape,
                       residual: Bool = false, path: Int32 = mk_kernels_active()) -> Method? {
        guard a.groups == 1 else { return nil }
        let geometry = geometry(input: input, weight: weight, attributes: a, output: output)
        let (c, o, kh, kw) = (geometry.c, weight[0], geometry.kh, geometry.kw)
        let depth = kh * kw * c
        let unpadded = a.padding.resolve(height: geometry.h, width: geometry.w, kernel: (kh, kw),
                                         stride: (a.strideH, a.strideW), dilation: (a.dilationH, a.dilationW)) == (0, 0, 0, 0)
        let unit = a.strideH == 1 && a.strideW == 1 && a.dilationH == 1 && a.dilationW == 1
        if c == 1 && unit && unpadded && mk_conv1ch_supported(kh, kw, o) != 0
            && (a.activation == .none || a.activation == .relu) {
            return .directSingleChannel
        }
        if kh * kw > 1 && o * depth <= FloatConv2DStep.directWeightLimit
            && withUnsafePointer(to: geometry, { mk_conv_direct_supported($0) }) != 0 {
            return .direct
        }
        if kh == 3 && kw == 3 && unit && c >= 32 && o >= 32 && output[1] * output[2] >= 49
            && GemmClamp(a.activation).fusesActivation && mk_winograd_enabled() != 0 {
            // From 7x7 outputs up: on ResNet-50's 7x7 maps the 16 transformed weights (1.8x the
            // 3x3 weight, 16 MB at 512 channels) stream from memory for 16 tiles, split by output
            // columns, yet beat the im2col GEMM's 2.25x the multiply-adds (Tools/winograd-ab, cold).
            return .winograd
        }
        if kh == 1 && kw == 1 && unit && unpadded { return .pointwise }
        if !residual && path == Int32(MK_KERNELS_AVX2.rawValue) && kh * kw > 1
            && withUnsafePointer(to: geometry, { mk_conv_windows_supported($0) }) != 0 {
            // AVX2 only: the portable window tile is slower than its im2col GEMM, and AVX-512's
            // panels are 32 columns wide. Not for strided 1x1 convolutions: their im2col is a
            // plain row copy, and with 8-32 panels the window loop re-read the weight from L2
            // per output row (ResNet-50's 1x1/2 over 256 channels took 2-3x as long).
            return .windows
        }
        return .im2col
    }

    /// nil when the plain loops must serve (grouped convolutions). `path`: the kernel path (tests
    /// pass each one the CPU has). `residual`: the fused Add's other input and activation (see
    /// `residual`); only for the GEMM methods, .pointwise and .im2col. `winogradTile`: 2 or 4
    /// forces that Winograd tile size (tests).
    static func make(input: TensorView, weight: TensorView, bias: TensorView?, attributes a: Conv2DAttributes,
                     output: MutableTensorView, residual: (data: UnsafePointer<Float>, activation: FusedActivation)? = nil,
                     buffers: inout [PlanBuffer], path: Int32 = mk_kernels_active(),
                     winogradTile forcedTile: Int? = nil) -> FloatConv2DStep? {
        guard let method = method(input: input.shape, weight: weight.shape, attributes: a, output: output.shape,
                                  residual: residual != nil, path: path) else {
            return nil
        }
        precondition(residual == nil || method == .pointwise || method == .im2col, "a residual on the \(method) method")
        let geometry = geometry(input: input.shape, weight: weight.shape, attributes: a, output: output.shape)
        let (n, c) = (input.shape[0], geometry.c)
        let o = weight.shape[0]
        let depth = geometry.kh * geometry.kw * c
        let packed: UnsafePointer<Float>
        var tile = 0
        switch method {
        case .directSingleChannel:
            packed = weight.data
        case .direct:
            let buffer = PlanBuffer(bytes: mk_rowgemm_packed_count(o, depth) * MemoryLayout<Float>.stride)
            let floats = buffer.base.assumingMemoryBound(to: Float.self)
            mk_rowgemm_pack(o, depth, weight.data, depth, floats)
            buffers.append(buffer)
            packed = UnsafePointer(floats)
        case .winograd:
            tile = forcedTile ?? winogradTile(outputPixels: output.shape[1] * output.shape[2])
            let matrices = (tile + 2) * (tile + 2)
            let panelCount = mk_sgemm_packed_b_count(path, o, c)
            var transformed = [Float](repeating: 0, count: matrices * o * c)
            mk_winograd_weights(Int32(tile), o, c, weight.data, &transformed)
            let buffer = PlanBuffer(bytes: matrices * panelCount * MemoryLayout<Float>.stride)
            let floats = buffer.base.assumingMemoryBound(to: Float.self)
            transformed.withUnsafeBufferPointer { source in
                for e in 0..<matrices {
                    mk_sgemm_pack_b(path, o, c, source.baseAddress! + e * o * c, c, floats + e * panelCount)
                }
            }
            buffers.append(buffer)
            packed = UnsafePointer(floats)
        case .pointwise, .im2col, .windows:
            let buffer = PlanBuffer(bytes: mk_sgemm_packed_b_count(path, o, depth) * MemoryLayout<Float>.stride)
            let floats = buffer.base.assumingMemoryBound(to: Float.self)
            mk_sgemm_pack_b(path, o, depth, weight.data, depth, floats)
            buffers.append(buffer)
            packed = UnsafePointer(floats)
        }
        return FloatConv2DStep(method: method, input: input.data, output: output.data, batch: n, geometry: geometry,
                               outputs: o, depth: depth, weight: packed, bias: bias?.data, residual: residual?.data,
                               activation: residual?.activation ?? a.activation,
                               path: path, panel: mk_sgemm_packed_b_count(path, 1, 1),
                               panelCount: mk_sgemm_packed_b_count(path, o, c),
                               blockRows: method == .winograd
                                ? winogradBlockTiles(tiles: mk_winograd_tiles(Int32(tile), geometry.oh, geometry.ow),
                                                     channels: c + o, matrices: (tile + 2) * (tile + 2))
                                : im2colBlockRows(pixels: geometry.oh * geometry.ow, depth: depth),
                               winogradTile: tile)
    }

    /// The Winograd tile size for a map of `outputPixels`: F(4×4) from 20x20 up (4x fewer
    /// multiply-adds than direct, against 2.25x for F(2×2)); below, its 2.25x larger transformed
    /// weights stream for too few tiles and the edge tiles waste much (14x14: 16 tiles of 4x4 for
    /// 196 pixels), so F(2×2). MODELKIT_WINOGRAD=2 or 4 forces one, for comparisons.
    static func winogradTile(outputPixels: Int) -> Int {
        let forced = Int(mk_winograd_forced_tile())
        if forced != 0 { return forced }
        return outputPixels >= 400 ? 4 : 2
    }

    /// Tiles whose transformed inputs and products (`matrices` of them, `channels` = C + O floats
    /// per tile and matrix) take about 1 MB of L2 (at least 48 tiles, so the GEMMs keep full
    /// register tiles), in equal blocks; an image of at most 1.5 blocks stays whole.
    static func winogradBlockTiles(tiles: Int, channels: Int, matrices: Int) -> Int {
        let target = max(48, (1024 * 1024 / MemoryLayout<Float>.stride) / (matrices * max(channels, 1)))
        guard tiles > target + target / 2 else { return max(tiles, 1) }
        let blocks = (tiles + target - 1) / target
        return (tiles + blocks - 1) / blocks
    }

    /// About 256 KB of im2col rows (at least 48, a multiple of the 6-row AVX2 tile), in equal
    /// blocks; an image of at most two such blocks stays whole (more blocks re-read the weight).
    static func im2colBlockRows(pixels: Int, depth: Int) -> Int {
        let target = max(48, (256 * 1024 / MemoryLayout<Float>.stride) / max(depth, 1))
        guard pixels > 2 * target else { return max(pixels, 1) }
        let blocks = (pixels + target - 1) / target
        return ((pixels + blocks - 1) / blocks + 5) / 6 * 6
    }

    /// Output rows `rows` of the flattened [batch × pixels, outputs] result; `scratch` holds
    /// `scratchCount` floats.
    func run(rows: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
        guard !rows.isEmpty else { return }
        let clamp = GemmClamp(activation)
        let (h, w, c) = (geometry.h, geometry.w, geometry.c)
        switch method {
        case .directSingleChannel:
            // Whole images only: callers split this method by image.
            let first = rows.lowerBound / pixels, last = rows.upperBound / pixels
            // Chosen only for no activation or ReLU (see make).
            mk_conv1ch_forward(first, last, h, w, geometry.kh, geometry.kw, outputs, input, weight, bias,
                               activation == .relu ? 1 : 0, output)
        case .pointwise:
            gemm(rows: rows.count, columns: outputs, left: input + rows.lowerBound * c, leftStride: c, weight: weight,
                 result: output + rows.lowerBound * outputs, bias: bias, clamp: clamp)
        case .direct:
            var geometry = self.geometry
            ParallelGemm.forEachImageRun(rows, pixels: pixels, maxRows: pixels) { image, run, row in
                mk_conv_direct_f32(path, &geometry, input + image * h * w * c, run.lowerBound, run.upperBound, outputs,
                                   weight, bias, clamp.on, clamp.lo, clamp.hi, output + row * outputs)
            }
        case .winograd:
            // The tiles covering the run's pixels; the output pass writes only the run's.
            let tile = winogradTile, tileColumns = (geometry.ow + tile - 1) / tile
            ParallelGemm.forEachImageRun(rows, pixels: pixels, maxRows: pixels) { image, run, _ in
                let first = run.lowerBound / geometry.ow / tile * tileColumns
                let last = min(tiles, ((run.upperBound - 1) / geometry.ow / tile + 1) * tileColumns)
                runWinograd(image: image, tiles: first..<last, pixels: run, scratch: scratch)
            }
        case .windows:
            var geometry = self.geometry
            ParallelGemm.forEachImageRun(rows, pixels: pixels, maxRows: blockRows) { image, run, row in
                mk_conv_windows_f32(path, &geometry, input + image * h * w * c, run.lowerBound, run.upperBound, outputs,
                                    weight, bias, clamp.on, clamp.lo, clamp.hi, scratch, output + row * outputs)
            }
        case .im2col:
            var geometry = self.geometry
            ParallelGemm.forEachImageRun(rows, pixels: pixels, maxRows: blockRows) { image, run, row in
                mk_im2col_f32(&geometry, input + image * h * w * c, run.lowerBound, run.upperBound, 0, scratch)
                gemm(rows: run.count, columns: outputs, left: scratch, leftStride: depth, weight: weight,
                     result: output + row * outputs, bias: bias, clamp: clamp)
            }
        }
        if !clamp.fusesActivation {
            let data = output + rows.lowerBound * outputs
            for index in 0..<(rows.count * outputs) { data[index] = activation.apply(data[index]) }
        }
    }

    /// Tiles `tiles` of image `image` in blocks of `blockRows`: transformed input, the GEMMs (one
    /// per transformed matrix), the output transform with bias and clamp, writing only output
    /// pixels in `pixels`.
    func runWinograd(image: Int, tiles: Range<Int>, pixels: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
        var geometry = self.geometry
        let c = geometry.c
        let source = input + image * geometry.h * geometry.w * c
        let target = output + image * self.pixels * outputs
        // Equal blocks of at most blockRows: a task's 100 tiles in blocks of 49 left a block of 2,
        // whose GEMMs streamed the transformed weights once more for almost nothing.
        let blocks = (tiles.count + blockRows - 1) / blockRows
        let size = blocks > 0 ? (tiles.count + blocks - 1) / blocks : blockRows
        var first = tiles.lowerBound
        while first < tiles.upperBound {
            let last = min(tiles.upperBound, first + size), count = last - first
            mk_winograd_input(path, Int32(winogradTile), &geometry, source, first, last, scratch, count * c)
            multiplyAndFold(transformed: scratch, products: scratch + matrices * count * c, tiles: first..<last,
                            pixels: pixels, columns: 0..<outputs, target: target)
            first = last
        }
    }

    /// Output columns `columns` (panel-aligned) of the whole image `image` by Winograd, from its
    /// transformed input tiles at `transformed` (`matrices` matrices [tiles][C]); the products go
    /// to their columns of [matrices][tiles][O] after them.
    func runWinograd(image: Int, columns: Range<Int>, transformed: UnsafeMutablePointer<Float>) {
        guard !columns.isEmpty else { return }
        multiplyAndFold(transformed: transformed, products: transformed + matrices * tiles * geometry.c, tiles: 0..<tiles,
                        pixels: 0..<pixels, columns: columns, target: output + image * pixels * outputs)
    }

    /// The Winograd GEMMs of the transformed tiles `tiles` at `transformed` (`matrices` matrices
    /// [tiles.count][C]) for output columns `columns`, into those columns of `products`
    /// ([matrices][tiles.count][O]), then the output transform with bias and clamp into the image's
    /// output `target`, writing only output pixels in `pixels`.
    private func multiplyAndFold(transformed: UnsafePointer<Float>, products: UnsafeMutablePointer<Float>,
                                 tiles: Range<Int>, pixels: Range<Int>, columns: Range<Int>,
                                 target: UnsafeMutablePointer<Float>) {
        let clamp = GemmClamp(activation)
        var geometry = self.geometry
        let (c, count, first) = (geometry.c, tiles.count, columns.lowerBound)
        for e in 0..<matrices {
            mk_sgemm_packed_clamp(path, count, columns.count, c, transformed + e * count * c, c,
                                  weight + e * panelCount + first * c, products + e * count * outputs + first,
                                  outputs, nil, 0, 0, 0)
        }
        mk_winograd_output(path, Int32(winogradTile), &geometry, columns.count, outputs, products + first,
                           count * outputs, tiles.lowerBound, tiles.upperBound, pixels.lowerBound, pixels.upperBound,
                           bias.map { $0 + first }, clamp.on, clamp.lo, clamp.hi, target + first)
    }

    /// The packed GEMM of `rows` x `columns` results at `result` (a block of `output`, rows
    /// `outputs` apart) with the bias and clamp in its epilogue; with a fused residual, the
    /// residual's same block is added first (copied into the block unless it already is the output).
    @inline(__always)
    private func gemm(rows: Int, columns: Int, left: UnsafePointer<Float>, leftStride: Int, weight: UnsafePointer<Float>,
                      result: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, clamp: GemmClamp) {
        guard let residual else {
            mk_sgemm_packed_clamp(path, rows, columns, depth, left, leftStride, weight, result, outputs, bias,
                                  clamp.on, clamp.lo, clamp.hi)
            return
        }
        if residual != UnsafePointer(output) {
            // Just before the GEMM, so the block is still in cache when its epilogue reads it back.
            let source = residual + (result - output)
            for row in 0..<rows { (result + row * outputs).update(from: source + row * outputs, count: columns) }
        }
        mk_sgemm_packed_accumulate_clamp(path, rows, columns, depth, left, leftStride, weight, result, outputs, bias,
                                         clamp.on, clamp.lo, clamp.hi)
    }

    /// Output columns `columns` (panel-aligned) of the rows of image `image`, whose GEMM left
    /// matrix (the input for a pointwise convolution, its im2col rows otherwise) is `left`.
    func run(image: Int, columns: Range<Int>, left: UnsafePointer<Float>) {
        guard !columns.isEmpty else { return }
        let clamp = GemmClamp(activation)
        let data = output + image * pixels * outputs + columns.lowerBound
        gemm(rows: pixels, columns: columns.count, left: left, leftStride: method == .pointwise ? geometry.c : depth,
             weight: weight + columns.lowerBound * depth, result: data, bias: bias.map { $0 + columns.lowerBound },
             clamp: clamp)
        if !clamp.fusesActivation {
            for row in 0..<pixels {
                let line = data + row * outputs
                for column in 0..<columns.count { line[column] = activation.apply(line[column]) }
            }
        }
    }

    /// How many tasks split the output columns, or nil to split rows. Few rows and many columns
    /// (the deep layers of a CNN at batch 1: 7x7 or 14x14 pixels, 256-2048 channels) split by
    /// columns, so each thread streams half of the packed weight instead of all of it, and a
    /// 49-row image does not split into 4 and 5 uneven row tiles. Counted over the whole batch:
    /// the column split multiplies image by image, re-reading the weight for each, which a big
    /// batch split by rows does not. Winograd by columns only for far fewer tiles than outputs
    /// (ResNet-50's 14x14 maps: 49 tiles, 256 outputs, 4 MB of transformed weights, which a tile
    /// split has both threads stream), in one task per thread (a second barrier and more tasks
    /// each re-reading the tiles cost more than they balance), and when the image is one block
    /// (its transformed input and products then fit the scratch). At 28x28 with F(4x4) (49 tiles,
    /// 128 outputs) the tile split measured faster.
    func columnTasks(threads: Int) -> Int? {
        switch method {
        case .pointwise, .im2col:
            guard batch * pixels < outputs else { return nil }
        case .winograd:
            guard 4 * batch * tiles <= outputs, tiles <= blockRows else { return nil }
            let tasks = min(threads, outputs / panel)
            return tasks > 1 ? tasks : nil
        default:
            // The row GEMM (.direct) packs its weight in another layout, and the 1-channel kernel has none.
            return nil
        }
        let tasks = ParallelGemm.columnTaskCount(columns: outputs, panel: panel, threads: threads)
        return tasks > 1 ? tasks : nil
    }

    /// The whole step, split by rows across `pool` when it is big enough to pay for the wake-up.
    func run(scratch: UnsafeMutablePointer<Float>, scratchStride: Int, pool: WorkerPool?) {
        let rows = batch * pixels
        // Row splits on 12 rows keep every task's rows whole tiles of every path (4, 6 and 12 rows).
        let granule = method == .directSingleChannel ? pixels : 12
        guard let pool, pool.threadCount > 1, work >= pool.minimumWork, rows >= 2 * granule else {
            run(rows: 0..<rows, scratch: scratch)
            return
        }
        if let tasks = columnTasks(threads: pool.threadCount) {
            runSplittingColumns(tasks: tasks, scratch: scratch, pool: pool)
            return
        }
        if method == .winograd {
            runSplittingTiles(scratch: scratch, scratchStride: scratchStride, pool: pool)
            return
        }
        // Each task uses its thread's scratch, so any number of tasks fits.
        let tasks = method == .directSingleChannel
            ? pool.threadCount
            : ParallelGemm.taskCount(rows: rows, threads: pool.threadCount,
                                     weightBytes: outputs * depth * MemoryLayout<Float>.stride)
        var job = (step: self, scratch: scratch, stride: scratchStride, rows: rows, granule: granule, tasks: tasks)
        withUnsafeMutablePointer(to: &job) { job in
            pool.run(tasks: job.pointee.tasks, context: job) { context, task, thread in
                let job = context!.assumingMemoryBound(to: (step: FloatConv2DStep, scratch: UnsafeMutablePointer<Float>,
                                                            stride: Int, rows: Int, granule: Int, tasks: Int).self)
                let range = ParallelGemm.chunk(task, of: job.pointee.tasks, count: job.pointee.rows,
                                               granule: job.pointee.granule)
                job.pointee.step.run(rows: range, scratch: job.pointee.scratch + thread * job.pointee.stride)
            }
        }
    }

    /// The batch's tiles split into contiguous ranges (whole 6-row register tiles of the GEMMs),
    /// each run image by image on its thread's scratch: tiles rather than rows, so a 14x14 map's
    /// 49 tiles split 24 + 25 instead of by tile rows (3 + 4 of 7).
    private func runSplittingTiles(scratch: UnsafeMutablePointer<Float>, scratchStride: Int, pool: WorkerPool) {
        let total = batch * tiles
        let tasks = ParallelGemm.taskCount(rows: total, threads: pool.threadCount,
                                           weightBytes: 16 * panelCount * MemoryLayout<Float>.stride)
        var job = (step: self, scratch: scratch, stride: scratchStride, total: total, tasks: tasks)
        withUnsafeMutablePointer(to: &job) { job in
            pool.run(tasks: job.pointee.tasks, context: job) { context, task, thread in
                let job = context!.assumingMemoryBound(to: (step: FloatConv2DStep, scratch: UnsafeMutablePointer<Float>,
                                                            stride: Int, total: Int, tasks: Int).self).pointee
                let step = job.step
                var next = ParallelGemm.chunk(task, of: job.tasks, count: job.total, granule: 6)
                while !next.isEmpty {
                    let image = next.lowerBound / step.tiles, base = image * step.tiles
                    let last = min(next.upperBound, base + step.tiles)
                    step.runWinograd(image: image, tiles: (next.lowerBound - base)..<(last - base), pixels: 0..<step.pixels,
                                     scratch: job.scratch + thread * job.stride)
                    next = last..<next.upperBound
                }
            }
        }
    }

    /// Per image: the im2col rows (Winograd: the transformed input tiles) split by rows into the
    /// shared scratch (it holds one image's), then the GEMM (Winograd: the GEMMs and the output
    /// transform) split by output columns.
    private func runSplittingColumns(tasks: Int, scratch: UnsafeMutablePointer<Float>, pool: WorkerPool) {
        // Im2col rows and input tiles are cheap to split: a few tasks per thread, like the GEMM's columns.
        var job = ColumnJob(step: self, scratch: scratch, image: 0, tasks: tasks,
                            inputTasks: min(method == .winograd ? tiles : pixels,
                                            pool.threadCount * ParallelGemm.tasksPerThread))
        withUnsafeMutablePointer(to: &job) { job in
            for image in 0..<batch {
                job.pointee.image = image
                if method == .winograd || method == .im2col {
                    // The input pass: Winograd's input tiles or the im2col rows, into the shared scratch.
                    pool.run(tasks: job.pointee.inputTasks, context: job) { context, task in
                        let job = context!.assumingMemoryBound(to: ColumnJob.self).pointee
                        let step = job.step
                        var geometry = step.geometry
                        let winograd = step.method == .winograd
                        let units = ParallelGemm.chunk(task, of: job.inputTasks, count: winograd ? step.tiles : step.pixels,
                                                       granule: 1)
                        guard !units.isEmpty else { return }
                        let image = step.input + job.image * geometry.h * geometry.w * geometry.c
                        if winograd {
                            mk_winograd_input(step.path, Int32(step.winogradTile), &geometry, image, units.lowerBound,
                                              units.upperBound, job.scratch + units.lowerBound * geometry.c,
                                              step.tiles * geometry.c)
                        } else {
                            mk_im2col_f32(&geometry, image, units.lowerBound, units.upperBound, 0,
                                          job.scratch + units.lowerBound * step.depth)
                        }
                    }
                }
                pool.run(tasks: tasks, context: job) { context, task in
                    let job = context!.assumingMemoryBound(to: ColumnJob.self).pointee
                    let step = job.step
                    let columns = ParallelGemm.chunk(task, of: job.tasks, count: step.outputs, granule: step.panel)
                    if step.method == .winograd {
                        step.runWinograd(image: job.image, columns: columns, transformed: job.scratch)
                        return
                    }
                    let left = step.method == .pointwise
                        ? step.input + job.image * step.pixels * step.geometry.c : UnsafePointer(job.scratch)
                    step.run(image: job.image, columns: columns, left: left)
                }
            }
        }
    }
}

/// What the tasks of a column-split convolution share.
private struct ColumnJob {
    let step: FloatConv2DStep
    let scratch: UnsafeMutablePointer<Float>
    var image: Int
    /// Tasks of the GEMM (column ranges) and of the im2col or Winograd input pass (row or tile ranges).
    let tasks: Int
    let inputTasks: Int
}
