import CModelKitKernels
import ModelKitCore

/// Conv2D and Dense through the packed GEMM, split across a `WorkerPool`. Every output element
/// is computed by exactly one task with the same GEMM call shape along K as the single-thread
/// path, so results match it up to the GEMM's row/column tiling.
enum ParallelGemm {
    /// Below this many multiply-adds a layer runs on the caller's thread: waking the pool costs
    /// more than it saves.
    static let minimumWork = 64 * 1024

    /// Splits 0..<count into `parts` contiguous ranges whose bounds are multiples of `granule`.
    @inline(__always)
    static func chunk(_ task: Int, of parts: Int, count: Int, granule: Int) -> Range<Int> {
        let units = (count + granule - 1) / granule
        let lower = min(count, units * task / parts * granule)
        let upper = min(count, units * (task + 1) / parts * granule)
        return lower..<upper
    }

    /// `scratch` holds `pool.threadCount` blocks of `scratchStride` floats, one per worker.
    static func conv2D(input: TensorView, weight: TensorView, bias: TensorView?, attributes: Conv2DAttributes,
                       output: MutableTensorView, scratch: UnsafeMutablePointer<Float>, scratchStride: Int,
                       pool: WorkerPool) {
        let (n, o) = (input.shape[0], weight.shape[0])
        let pixels = output.shape[1] * output.shape[2]
        let depth = weight.shape[1] * weight.shape[2] * weight.shape[3]
        let rows = n * pixels
        guard pool.threadCount > 1, rows * o * depth >= minimumWork, rows >= 2 * pool.threadCount else {
            GemmKernels.conv2D(input: input, weight: weight, bias: bias, attributes: attributes, output: output,
                               scratch: scratch)
            return
        }
        var job = ConvJob(input: input, weight: weight, bias: bias, attributes: attributes, output: output,
                          scratch: scratch, scratchStride: scratchStride, rows: rows, tasks: pool.threadCount)
        withUnsafeMutablePointer(to: &job) { job in
            pool.run(tasks: job.pointee.tasks, context: job) { context, task in
                let job = context!.assumingMemoryBound(to: ConvJob.self)
                let range = ParallelGemm.chunk(task, of: job.pointee.tasks, count: job.pointee.rows, granule: 8)
                guard !range.isEmpty else { return }
                ParallelGemm.conv2DRows(range, input: job.pointee.input, weight: job.pointee.weight, bias: job.pointee.bias,
                           attributes: job.pointee.attributes, output: job.pointee.output,
                           scratch: job.pointee.scratch + task * job.pointee.scratchStride)
            }
        }
    }

    /// The arguments of a parallel convolution, passed to the tasks by pointer.
    struct ConvJob {
        var input: TensorView, weight: TensorView, bias: TensorView?
        var attributes: Conv2DAttributes
        var output: MutableTensorView
        var scratch: UnsafeMutablePointer<Float>
        var scratchStride: Int
        var rows: Int
        var tasks: Int
    }

    /// The arguments of a parallel Dense, passed to the tasks by pointer.
    struct DenseJob {
        var input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?
        var output: UnsafeMutablePointer<Float>
        var n: Int, k: Int, o: Int
        var activation: FusedActivation
        var tasks: Int
    }

    /// Output rows `rows` (over batch × output pixels) of a convolution, im2col one image's part
    /// at a time into `scratch`.
    static func conv2DRows(_ rows: Range<Int>, input: TensorView, weight: TensorView, bias: TensorView?,
                           attributes: Conv2DAttributes, output: MutableTensorView, scratch: UnsafeMutablePointer<Float>) {
        let (h, w, c) = (input.shape[1], input.shape[2], input.shape[3])
        let (o, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2])
        let (oh, ow) = (output.shape[1], output.shape[2])
        let depth = kh * kw * c
        let pixels = oh * ow
        if GemmKernels.isPointwise(weight: weight.shape, attributes: attributes) {
            mk_sgemm(0, 1, rows.count, o, c, 1, input.data + rows.lowerBound * c, c, weight.data, c, 0,
                     output.data + rows.lowerBound * o, o)
        } else {
            let pad = attributes.padding.resolve(height: h, width: w, kernel: (kh, kw),
                                                 stride: (attributes.strideH, attributes.strideW),
                                                 dilation: (attributes.dilationH, attributes.dilationW))
            var row = rows.lowerBound
            while row < rows.upperBound {
                let image = row / pixels
                let first = row - image * pixels
                let last = min(pixels, rows.upperBound - image * pixels)
                let source = input.data + image * h * w * c
                var column = scratch
                for pixel in first..<last {
                    let (oy, ox) = (pixel / ow, pixel % ow)
                    for ky in 0..<kh {
                        let y = oy * attributes.strideH - pad.top + ky * attributes.dilationH
                        for kx in 0..<kw {
                            let x = ox * attributes.strideW - pad.left + kx * attributes.dilationW
                            if y >= 0 && y < h && x >= 0 && x < w {
                                column.update(from: source + (y * w + x) * c, count: c)
                            } else {
                                column.update(repeating: 0, count: c)
                            }
                            column += c
                        }
                    }
                }
                mk_sgemm(0, 1, last - first, o, depth, 1, scratch, depth, weight.data, depth, 0,
                         output.data + row * o, o)
                row = image * pixels + last
            }
        }
        GemmKernels.addBiasAndActivate(output.data + rows.lowerBound * o, rows: rows.count, columns: o,
                                       bias: bias?.data, activation: attributes.activation)
    }

    /// Dense split over output columns when there are enough of them, else over batch rows.
    static func dense(input: TensorView, weight: TensorView, bias: TensorView?, activation: FusedActivation,
                      output: MutableTensorView, pool: WorkerPool) {
        let (n, k, o) = (input.shape[0], input.shape[1], weight.shape[0])
        let tasks = pool.threadCount
        guard tasks > 1, n * k * o >= minimumWork else {
            GemmKernels.dense(input: input, weight: weight, bias: bias, activation: activation, output: output)
            return
        }
        var job = DenseJob(input: input.data, weight: weight.data, bias: bias?.data, output: output.data, n: n, k: k, o: o,
                           activation: activation, tasks: tasks)
        if o >= 32 * tasks {
            withUnsafeMutablePointer(to: &job) { job in
                pool.run(tasks: tasks, context: job) { context, task in
                    let job = context!.assumingMemoryBound(to: DenseJob.self).pointee
                    let columns = ParallelGemm.chunk(task, of: job.tasks, count: job.o, granule: 16)
                    guard !columns.isEmpty else { return }
                    let out = job.output + columns.lowerBound
                    mk_sgemm(0, 1, job.n, columns.count, job.k, 1, job.input, job.k, job.weight + columns.lowerBound * job.k,
                             job.k, 0, out, job.o)
                    for row in 0..<job.n {
                        GemmKernels.addBiasAndActivate(out + row * job.o, rows: 1, columns: columns.count,
                                                       bias: job.bias.map { $0 + columns.lowerBound }, activation: job.activation)
                    }
                }
            }
        } else if n >= 2 * tasks {
            withUnsafeMutablePointer(to: &job) { job in
                pool.run(tasks: tasks, context: job) { context, task in
                    let job = context!.assumingMemoryBound(to: DenseJob.self).pointee
                    let rows = ParallelGemm.chunk(task, of: job.tasks, count: job.n, granule: 4)
                    guard !rows.isEmpty else { return }
                    mk_sgemm(0, 1, rows.count, job.o, job.k, 1, job.input + rows.lowerBound * job.k, job.k, job.weight, job.k, 0,
                             job.output + rows.lowerBound * job.o, job.o)
                    GemmKernels.addBiasAndActivate(job.output + rows.lowerBound * job.o, rows: rows.count, columns: job.o,
                                                   bias: job.bias, activation: job.activation)
                }
            }
        } else {
            GemmKernels.dense(input: input, weight: weight, bias: bias, activation: activation, output: output)
        }
    }
}
