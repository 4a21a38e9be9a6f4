import CModelKitKernels
import ModelKitCore

/// An int8 depthwise Conv2D step (groups == C) with its weights repacked and its requantization
/// constants laid out for the C kernel at plan time. The kernel sums (q − z)·w exactly in int32
/// and requantizes in the rounding of `QuantizedMultiplier`, so results are bit-exact with
/// `Int8ReferenceKernels.conv2D`. Immutable after init; each task writes only its output rows.
final class Int8DepthwiseConv2D: @unchecked Sendable {
    let input: Int8View
    let output: MutableInt8View
    let geometry: mk_depthwise_geometry
    let rows: Int
    /// Parallel tasks per run (1: on the caller's thread).
    let tasks: Int
    private let weight: UnsafeMutablePointer<Int8>
    /// multipliers then shifts, one per channel.
    private let constants: UnsafeMutablePointer<Int32>
    private let requantization: mk_depthwise_s8_output
    /// Tap-pair weights and the bias with the input zero point folded in, for interior pixels.
    private let pairs: UnsafeMutablePointer<Int16>
    private let interiorBias: UnsafeMutablePointer<Int32>
    /// The interior kernel's prepared requantization constants (32-byte aligned).
    private let lanes: UnsafeMutableRawPointer
    private let interior: mk_depthwise_s8_interior

    init(input: Int8View, weight: UnsafePointer<Int8>, weightShape: Shape, bias: UnsafePointer<Int32>?,
         attributes: Conv2DAttributes, requantization r: Requantization, output: MutableInt8View, pool: WorkerPool?) {
        self.input = input
        self.output = output
        geometry = Depthwise.geometry(input: input.shape, weight: weightShape, output: output.shape, attributes: attributes)
        rows = output.shape[0] * output.shape[1]
        let taps = weightShape[1] * weightShape[2]
        let channels = geometry.c
        tasks = Depthwise.taskCount(rows: rows, workPerRow: geometry.ow * channels * taps, pool: pool)
        self.weight = .allocate(capacity: taps * channels)
        Depthwise.repack(weight, channels: channels, taps: taps, into: self.weight)
        constants = .allocate(capacity: 2 * channels)
        for channel in 0..<channels {
            constants[channel] = r.multipliers[channel].multiplier
            constants[channels + channel] = r.multipliers[channel].shift
        }
        pairs = .allocate(capacity: mk_depthwise_s8_pairs_count(taps, channels))
        interiorBias = .allocate(capacity: channels)
        mk_depthwise_s8_pack_interior(taps, channels, self.weight, bias, input.zeroPoint, pairs, interiorBias)
        var requantization = mk_depthwise_s8_output(bias: bias, multiplier: constants, shift: constants + channels,
                                                    output_zero_point: r.outputZeroPoint, minimum: r.minimum,
                                                    maximum: r.maximum)
        self.requantization = requantization
        lanes = .allocate(byteCount: max(mk_depthwise_s8_lanes_bytes(channels), 1), alignment: 64)
        let prepared = mk_depthwise_s8_prepare_lanes(channels, &requantization, lanes) != 0
        interior = mk_depthwise_s8_interior(pairs: pairs, bias: interiorBias, lanes: prepared ? UnsafeRawPointer(lanes) : nil)
    }

    deinit {
        weight.deallocate()
        constants.deallocate()
        pairs.deallocate()
        interiorBias.deallocate()
        lanes.deallocate()
    }

    /// Output rows `range` (over batch × output height); `path` forces a C kernel path in tests.
    func run(rows range: Range<Int>, path: Int32 = mk_kernels_active()) {
        withUnsafePointer(to: geometry) { geometry in
            withUnsafePointer(to: requantization) { requantization in
                withUnsafePointer(to: interior) { interior in
                    mk_depthwise_conv2d_s8(path, geometry, range.lowerBound, range.upperBound, input.data, input.zeroPoint,
                                           weight, requantization, interior, output.data)
                }
            }
        }
    }

    func run(pool: WorkerPool?, path: Int32 = mk_kernels_active()) {
        guard let pool, tasks > 1 else {
            run(rows: 0..<rows, path: path)
            return
        }
        var job = (step: Unmanaged.passUnretained(self), path: path)
        withUnsafeMutablePointer(to: &job) { job in
            pool.run(tasks: tasks, context: job) { context, task in
                let job = context!.assumingMemoryBound(to: (step: Unmanaged<Int8DepthwiseConv2D>, path: Int32).self).pointee
                let step = job.step.takeUnretainedValue()
                step.run(rows: ParallelGemm.chunk(task, of: step.tasks, count: step.rows, granule: 1), path: job.path)
            }
        }
    }
}
