import CModelKitKernels
import ModelKitCore

/// What depthwise convolutions share: recognising one and describing its geometry to the C kernels.
enum Depthwise {
    /// One filter per input channel (groups == C, channel multiplier 1), the MobileNet block's
    /// middle convolution. im2col + GEMM would run C separate 1-output GEMMs; the channel-SIMD
    /// kernel reads each input value a few times instead.
    static func applies(input: Shape, weight: Shape, attributes: Conv2DAttributes) -> Bool {
        let channels = input[3]
        return attributes.groups > 1 && attributes.groups == channels && weight[0] == channels && weight[3] == 1
    }

    static func geometry(input: Shape, weight: Shape, output: Shape, attributes a: Conv2DAttributes) -> mk_depthwise_geometry {
        let (h, w, c) = (input[1], input[2], input[3])
        let pad = a.padding.resolve(height: h, width: w, kernel: (weight[1], weight[2]), stride: (a.strideH, a.strideW),
                                    dilation: (a.dilationH, a.dilationW))
        return mk_depthwise_geometry(h: h, w: w, c: c, kh: weight[1], kw: weight[2], stride_h: a.strideH,
                                     stride_w: a.strideW, dilation_h: a.dilationH, dilation_w: a.dilationW,
                                     pad_top: pad.top, pad_left: pad.left, oh: output[1], ow: output[2])
    }

    /// [C, kH, kW, 1] -> [kH, kW, C]: a tap's C weights contiguous, like the input's C channels.
    static func repack<Element>(_ weight: UnsafePointer<Element>, channels: Int, taps: Int,
                                into destination: UnsafeMutablePointer<Element>) {
        for channel in 0..<channels {
            for tap in 0..<taps { destination[tap * channels + channel] = weight[channel * taps + tap] }
        }
    }

    /// How many GEMM multiply-adds one depthwise multiply-add costs in time. The pool's minimum
    /// work is counted in GEMM multiply-adds, which run several times faster (a GEMM reuses each
    /// loaded value across a register tile; a depthwise tap is used once per output): without the
    /// weight, MobileNetV2's depthwise layers below 56x56 all ran on one thread at --threads 2.
    static let costPerMultiplyAdd = 8

    /// Tasks for `rows` output rows on `pool`'s threads: a few per thread, so a late worker
    /// costs little, and one below the pool's minimum amount of work.
    static func taskCount(rows: Int, workPerRow: Int, pool: WorkerPool?) -> Int {
        guard let pool, pool.threadCount > 1, rows * workPerRow * costPerMultiplyAdd >= pool.minimumWork else { return 1 }
        return min(rows, pool.threadCount * 4)
    }
}

/// A float depthwise Conv2D step with its weights repacked at plan time. The kernel clamps to the
/// fused activation's range (none, ReLU, clip); a leaky ReLU is applied afterwards per row range.
/// Immutable after init; `run` writes only the output rows of its tasks.
final class DepthwiseConv2D: @unchecked Sendable {
    let input: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let bias: UnsafePointer<Float>?
    let geometry: mk_depthwise_geometry
    let rows: Int
    let activation: FusedActivation
    /// Parallel tasks per run (1: on the caller's thread).
    let tasks: Int
    private let weight: UnsafeMutablePointer<Float>
    private let clamp: (low: Float, high: Float)

    init(input: TensorView, weight: TensorView, bias: TensorView?, attributes: Conv2DAttributes,
         output: MutableTensorView, pool: WorkerPool?) {
        self.input = input.data
        self.output = output.data
        self.bias = bias?.data
        geometry = Depthwise.geometry(input: input.shape, weight: weight.shape, output: output.shape, attributes: attributes)
        rows = output.shape[0] * output.shape[1]
        activation = attributes.activation
        let taps = weight.shape[1] * weight.shape[2]
        tasks = Depthwise.taskCount(rows: rows, workPerRow: geometry.ow * geometry.c * taps, pool: pool)
        self.weight = .allocate(capacity: taps * geometry.c)
        Depthwise.repack(weight.data, channels: geometry.c, taps: taps, into: self.weight)
        switch attributes.activation {
        case .relu: clamp = (0, .infinity)
        case .clip(let low, let high): clamp = (low, high)
        case .none, .leakyRelu: clamp = (-.infinity, .infinity)
        }
    }

    deinit { weight.deallocate() }

    /// Output rows `range` (over batch × output height); `path` forces a C kernel path in tests.
    func run(rows range: Range<Int>, path: Int32 = mk_kernels_active()) {
        withUnsafePointer(to: geometry) { geometry in
            mk_depthwise_conv2d(path, geometry, range.lowerBound, range.upperBound, input, weight,
                                bias, clamp.low, clamp.high, output)
        }
        if case .leakyRelu = activation {
            let rowSize = geometry.ow * geometry.c
            let values = output + range.lowerBound * rowSize
            for index in 0..<range.count * rowSize { values[index] = activation.apply(values[index]) }
        }
    }

    func run(pool: WorkerPool?) {
        guard let pool, tasks > 1 else {
            run(rows: 0..<rows)
            return
        }
        pool.run(tasks: tasks, context: Unmanaged.passUnretained(self).toOpaque()) { context, task in
            let step = Unmanaged<DepthwiseConv2D>.fromOpaque(context!).takeUnretainedValue()
            step.run(rows: ParallelGemm.chunk(task, of: step.tasks, count: step.rows, granule: 1))
        }
    }
}
