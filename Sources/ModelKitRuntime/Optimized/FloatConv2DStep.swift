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
    }

    let method: Method
    let input: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let batch: Int
    let geometry: mk_conv_geometry
    let outputs: Int
    let depth: Int
    /// Packed for `path` (mk_rowgemm_pack for .direct; the single-channel kernel reads the plain
    /// [O, kH, kW, 1] weight instead).
    let weight: UnsafePointer<Float>
    let bias: UnsafePointer<Float>?
    let activation: FusedActivation
    let path: Int32

    var pixels: Int { geometry.oh * geometry.ow }
    /// Multiply-adds of the whole step, for the parallel threshold.
    var work: Int { batch * pixels * outputs * depth }

    /// Floats of im2col scratch one thread needs.
    var scratchCount: Int { method == .im2col ? pixels * depth : 0 }

    /// Weight floats up to which .direct serves: it streams the whole packed weight from L2 for
    /// every 6 output pixels, where the GEMM blocks it for L1 (256 KB; the small CNN's largest is 147 KB).
    static let directWeightLimit = 64 * 1024

    /// nil when the plain loops must serve (grouped convolutions).
    static func make(input: TensorView, weight: TensorView, bias: TensorView?, attributes a: Conv2DAttributes,
                     output: MutableTensorView, buffers: inout [PlanBuffer]) -> FloatConv2DStep? {
        guard a.groups == 1 else { return nil }
        let (n, h, w, c) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (o, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2])
        let pad = a.padding.resolve(height: h, width: w, kernel: (kh, kw), stride: (a.strideH, a.strideW),
                                    dilation: (a.dilationH, a.dilationW))
        let geometry = mk_conv_geometry(h: h, w: w, c: c, kh: kh, kw: kw, sh: a.strideH, sw: a.strideW, dh: a.dilationH,
                                        dw: a.dilationW, pad_top: pad.top, pad_left: pad.left,
                                        oh: output.shape[1], ow: output.shape[2])
        let depth = kh * kw * c
        let path = mk_kernels_active()
        let unpadded = pad == (0, 0, 0, 0)
        let unit = a.strideH == 1 && a.strideW == 1 && a.dilationH == 1 && a.dilationW == 1
        let method: Method
        let packed: UnsafePointer<Float>
        if c == 1 && unit && unpadded && mk_conv1ch_supported(kh, kw, o) != 0
            && (a.activation == .none || a.activation == .relu) {
            method = .directSingleChannel
            packed = weight.data
        } else if kh * kw > 1 && o * depth <= FloatConv2DStep.directWeightLimit
                    && withUnsafePointer(to: geometry, { mk_conv_direct_supported($0) }) != 0 {
            method = .direct
            let buffer = PlanBuffer(bytes: mk_rowgemm_packed_count(o, depth) * MemoryLayout<Float>.stride)
            let floats = buffer.base.assumingMemoryBound(to: Float.self)
            mk_rowgemm_pack(o, depth, weight.data, depth, floats)
            buffers.append(buffer)
            packed = UnsafePointer(floats)
        } else {
            method = kh == 1 && kw == 1 && unit && unpadded ? .pointwise : .im2col
            let buffer = PlanBuffer(bytes: mk_sgemm_packed_b_count(path, o, depth) * MemoryLayout<Float>.stride)
            let floats = buffer.base.assumingMemoryBound(to: Float.self)
            mk_sgemm_pack_b(path, o, depth, weight.data, depth, floats)
            buffers.append(buffer)
            packed = UnsafePointer(floats)
        }
        return FloatConv2DStep(method: method, input: input.data, output: output.data, batch: n, geometry: geometry,
                               outputs: o, depth: depth, weight: packed, bias: bias?.data, activation: a.activation,
                               path: path)
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
            mk_sgemm_packed_clamp(path, rows.count, outputs, depth, input + rows.lowerBound * c, c, weight,
                                  output + rows.lowerBound * outputs, outputs, bias, clamp.on, clamp.lo, clamp.hi)
        case .direct:
            var row = rows.lowerBound
            var geometry = self.geometry
            while row < rows.upperBound {
                let image = row / pixels
                let first = row - image * pixels
                let last = min(pixels, rows.upperBound - image * pixels)
                mk_conv_direct_f32(path, &geometry, input + image * h * w * c, first, last, outputs, weight, bias,
                                   clamp.on, clamp.lo, clamp.hi, output + row * outputs)
                row += last - first
            }
        case .im2col:
            var row = rows.lowerBound
            var geometry = self.geometry
            while row < rows.upperBound {
                let image = row / pixels
                let first = row - image * pixels
                let last = min(pixels, rows.upperBound - image * pixels)
                mk_im2col_f32(&geometry, input + image * h * w * c, first, last, 0, scratch)
                mk_sgemm_packed_clamp(path, last - first, outputs, depth, scratch, depth, weight,
                                      output + row * outputs, outputs, bias, clamp.on, clamp.lo, clamp.hi)
                row += last - first
            }
        }
        if !clamp.fusesActivation {
            let data = output + rows.lowerBound * outputs
            for index in 0..<(rows.count * outputs) { data[index] = activation.apply(data[index]) }
        }
    }

    /// The whole step, split by rows across `pool` when it is big enough to pay for the wake-up.
    func run(scratch: UnsafeMutablePointer<Float>, scratchStride: Int, pool: WorkerPool?) {
        let rows = batch * pixels
        let granule = method == .directSingleChannel ? pixels : 8
        guard let pool, pool.threadCount > 1, work >= pool.minimumWork, rows >= 2 * granule else {
            run(rows: 0..<rows, scratch: scratch)
            return
        }
        let tasks = method == .directSingleChannel ? pool.threadCount : ParallelGemm.taskCount(rows: rows, threads: pool.threadCount)
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
}
