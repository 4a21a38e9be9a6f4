import CAllocationCounter
import Glibc
import ModelKitCore
import ModelKitFormat
@testable import ModelKitRuntime
import Testing
@_exported import ModelKitTestSupport



func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
    zip(a.floats!, b.floats!).map { abs($0 - $1) }.max() ?? 0
}

struct WorkerPoolTests {
    @Test(arguments: [1, 2, 3, 4])
    func everyTaskRunsExactlyOnce(threads: Int) {
        let pool = WorkerPool(threads: threads)
        for tasks in [0, 1, 2, 5, 17] {
            // Each task touches only its own slot; the pool's join orders the writes before the check.
            let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(tasks, 1))
            defer { counts.deallocate() }
            counts.initialize(repeating: 0)
            // Several jobs in a row reuse the same threads.
            for _ in 0..<3 {
                pool.run(tasks: tasks) { task in counts[task] += 1 }
            }
            #expect(counts.prefix(tasks).allSatisfy { $0 == 3 }, "\(threads) threads, \(tasks) tasks")
        }
    }
}

/// Thread-indexed tasks: each runs once, on a thread index below the pool's thread count, and no
/// two tasks run on the same index at once (so per-thread scratch is never shared).
struct WorkerPoolThreadTaskTests {
    @Test(arguments: [1, 2, 3, 4])
    func threadIndicesAreValidAndExclusive(threads: Int) {
        let pool = WorkerPool(threads: threads)
        let tasks = 40
        // Per task: runs and the thread index; per thread: a busy flag that a second concurrent
        // task on the same index would find set.
        // Layout: [runs, thread + 1] per task, then a busy flag per thread (up to 4), then the collision flag.
        let slots = UnsafeMutableBufferPointer<Int>.allocate(capacity: 2 * tasks + 5)
        defer { slots.deallocate() }
        slots.initialize(repeating: 0)
        for _ in 0..<3 {
            pool.run(tasks: tasks, context: UnsafeMutableRawPointer(slots.baseAddress!)) { context, task, thread in
                let slots = context!.assumingMemoryBound(to: Int.self)
                let tasks = 40
                let busy = slots + 2 * tasks + thread
                if busy.pointee != 0 { slots[2 * tasks + 4] = 1 }
                busy.pointee = 1
                var spin = 0
                for index in 0..<2000 { spin &+= index }  // long enough for tasks to overlap
                slots[2 * task] += 1 + (spin & 0)
                slots[2 * task + 1] = thread + 1
                busy.pointee = 0
            }
        }
        #expect((0..<tasks).allSatisfy { slots[2 * $0] == 3 }, "every task once per job")
        #expect((0..<tasks).allSatisfy { (1...threads).contains(slots[2 * $0 + 1]) }, "thread indices in range")
        #expect(slots[2 * tasks + 4] == 0, "two tasks ran on one thread index at once")
    }
}

/// Multi-threaded sessions against single-threaded ones: each output element is computed by
/// one worker with the same GEMM, so results agree to float rounding.
struct ParallelSessionTests {
    struct ConvCase: Sendable, CustomTestStringConvertible {
        var input: [Int]
        var weight: [Int]
        var attributes: Conv2DAttributes
        var testDescription: String { "\(input) * \(weight) s\(attributes.strideH) \(attributes.padding)" }
    }

    static let convCases: [ConvCase] = [
        ConvCase(input: [8, 28, 28, 1], weight: [32, 3, 3, 1], attributes: Conv2DAttributes(activation: .relu)),
        ConvCase(input: [1, 28, 28, 8], weight: [16, 3, 3, 8], attributes: Conv2DAttributes(padding: .same)),
        ConvCase(input: [3, 13, 11, 5], weight: [7, 3, 3, 5], attributes: Conv2DAttributes(strides: (2, 2), padding: .same)),
        ConvCase(input: [5, 9, 9, 4], weight: [16, 3, 3, 4], attributes: Conv2DAttributes(dilations: (2, 2), activation: .relu6)),
        ConvCase(input: [4, 10, 10, 16], weight: [24, 1, 1, 16], attributes: Conv2DAttributes()),
        // Fewer rows (over the batch) than output channels: split by output columns (im2col and
        // pointwise, an edge panel, the unfused leaky ReLU, two images).
        ConvCase(input: [2, 5, 5, 8], weight: [64, 3, 3, 8], attributes: Conv2DAttributes(padding: .same, activation: .relu)),
        ConvCase(input: [2, 4, 4, 12], weight: [40, 1, 1, 12], attributes: Conv2DAttributes(activation: .leakyRelu(alpha: 0.1))),
        ConvCase(input: [1, 11, 11, 16], weight: [72, 3, 3, 16], attributes: Conv2DAttributes(strides: (2, 2), padding: .same)),
        // Column splits into more tasks than threads (several panels each, an edge panel last).
        ConvCase(input: [1, 5, 5, 8], weight: [200, 1, 1, 8], attributes: Conv2DAttributes(activation: .relu6)),
        ConvCase(input: [1, 6, 6, 4], weight: [136, 3, 3, 4], attributes: Conv2DAttributes(padding: .same, activation: .relu)),
        // im2col rows in blocks, the row ranges of the tasks starting inside an image.
        ConvCase(input: [3, 18, 18, 64], weight: [20, 3, 3, 64], attributes: Conv2DAttributes(padding: .same)),
        // Winograd: 3x3 stride 1 over 32+ channels, tiles split across images and mid-image.
        ConvCase(input: [3, 11, 13, 32], weight: [40, 3, 3, 32], attributes: Conv2DAttributes(padding: .same, activation: .relu)),
    ]

    func compare(_ model: Model, input: Tensor) throws {
        let single = try Session(model: model, options: SessionOptions(threads: 1)).run(input)
        for threads in [2, 3, 4] {
            let parallel = try Session(model: model, options: SessionOptions.splittingEveryLayer(threads: threads)).run(input)
            #expect(parallel.shape == single.shape)
            #expect(maxDifference(parallel, single) <= 1e-5, "\(threads) threads")
        }
    }

    @Test(arguments: convCases)
    func conv2D(_ testCase: ConvCase) throws {
        var random = SplitMix64(seed: UInt64(testCase.input.reduce(0, +)))
        let graph = Graph(
            inputs: [ValueInfo(name: "x", shape: Shape(testCase.input))], outputs: ["y"],
            nodes: [Node(name: "conv", operation: .conv2D(testCase.attributes), inputs: ["x", "w", "b"], outputs: ["y"])],
            initializers: ["w": Tensor(shape: Shape(testCase.weight), floats: random.floats(testCase.weight.reduce(1, *))),
                           "b": Tensor(shape: [testCase.weight[0]], floats: random.floats(testCase.weight[0]))])
        try compare(Model(graph: graph), input: Tensor(shape: Shape(testCase.input), floats: random.floats(testCase.input.reduce(1, *))))
    }

    /// (64, 256, 128) splits over columns, (64, 512, 10) over rows, (1, 784, 256) over columns at batch one.
    /// (1, 64, 300): more column tasks than threads.
    @Test(arguments: [(64, 256, 128), (64, 512, 10), (1, 784, 256), (1, 64, 300)])
    func dense(batch: Int, inputs: Int, outputs: Int) throws {
        var random = SplitMix64(seed: UInt64(batch * 7 + outputs))
        let graph = Graph(
            inputs: [ValueInfo(name: "x", shape: [batch, inputs])], outputs: ["y"],
            nodes: [Node(name: "dense", operation: .dense(activation: .relu), inputs: ["x", "w", "b"], outputs: ["y"])],
            initializers: ["w": Tensor(shape: [outputs, inputs], floats: random.floats(outputs * inputs)),
                           "b": Tensor(shape: [outputs], floats: random.floats(outputs))])
        try compare(Model(graph: graph), input: Tensor(shape: [batch, inputs], floats: random.floats(batch * inputs)))
    }

    @Test(arguments: ["tiny-cnn", "fashion-mlp"])
    func fixtureModels(name: String) throws {
        let model = try ModelFile.read(path: repositoryRoot + "/Fixtures/models/\(name).mkm")
        let sample = model.graph.inputs[0].shape.dims.dropFirst()
        var random = SplitMix64(seed: 5)
        for batch in [1, 16] {
            let shape = Shape([batch] + sample)
            try compare(model, input: Tensor(shape: shape, floats: random.floats(shape.elementCount!)))
        }
    }

    /// The row-range convolution on ranges that start and end mid-image equals the whole-batch
    /// single-thread convolution: the split itself is exact, whatever the thread count.
    @Test(arguments: convCases)
    func rowRangesCoverTheConvolution(_ testCase: ConvCase) throws {
        var random = SplitMix64(seed: 99)
        let inputShape = Shape(testCase.input), weightShape = Shape(testCase.weight)
        let input = random.floats(inputShape.elementCount!), weight = random.floats(weightShape.elementCount!)
        let probe = try Graph(inputs: [ValueInfo(name: "x", shape: inputShape)], outputs: ["y"],
                              nodes: [Node(name: "c", operation: .conv2D(testCase.attributes), inputs: ["x", "w"], outputs: ["y"])],
                              initializers: ["w": Tensor(shape: weightShape, floats: weight)]).analyze()
        let outputShape = probe.values["y"]!.shape
        let rows = outputShape[0] * outputShape[1] * outputShape[2]
        var whole = [Float](repeating: 0, count: outputShape.elementCount!)
        var pieces = [Float](repeating: .nan, count: outputShape.elementCount!)
        var buffers: [PlanBuffer] = []
        input.withUnsafeBufferPointer { x in
            weight.withUnsafeBufferPointer { w in
                let inputView = TensorView(x.baseAddress!, inputShape), weightView = TensorView(w.baseAddress!, weightShape)
                for (target, lengths) in [(0, [rows]), (1, [1, 7, rows / 3 + 5, 13] + [Int](repeating: 29, count: rows))] {
                    func cover(_ y: UnsafeMutableBufferPointer<Float>) {
                        let step = FloatConv2DStep.make(input: inputView, weight: weightView, bias: nil,
                                                        attributes: testCase.attributes,
                                                        output: MutableTensorView(y.baseAddress!, outputShape), buffers: &buffers)!
                        var scratch = [Float](repeating: 0, count: max(1, step.scratchCount))
                        // The direct single-channel kernel splits by whole images only.
                        let granule = step.method == .directSingleChannel ? step.pixels : 1
                        var start = 0
                        for length in lengths where start < rows {
                            let end = min(rows, start + max(granule, length / granule * granule))
                            scratch.withUnsafeMutableBufferPointer { step.run(rows: start..<end, scratch: $0.baseAddress!) }
                            start = end
                        }
                    }
                    if target == 0 { whole.withUnsafeMutableBufferPointer { cover($0) } } else { pieces.withUnsafeMutableBufferPointer { cover($0) } }
                }
            }
        }
        let worst = zip(whole, pieces).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-5)
    }

    /// The row-task plan of a GEMM step: at least one task per thread, and more (up to 4 per
    /// thread, 2 when the weight passes 256 KB) only while each keeps `minimumRowsPerExtraTask`
    /// rows. (Tasks use their thread's scratch, so the count never depends on its size.)
    @Test func rowTaskCountsStayInBounds() {
        for threads in 1...4 {
            for rows in [1, 47, 49, 196, 784, 3136, 12544] {
                for weightBytes in [1024, 256 * 1024, 256 * 1024 + 1, 9_437_184] {
                    let tasks = ParallelGemm.taskCount(rows: rows, threads: threads, weightBytes: weightBytes)
                    let perThread = weightBytes <= 256 * 1024 ? 4 : 2
                    #expect(tasks >= threads && tasks <= perThread * threads)
                    if tasks > threads { #expect(rows / tasks >= ParallelGemm.minimumRowsPerExtraTask) }
                }
            }
        }
    }
}

extension ParallelSessionTests {
    /// Column splits: at least one task per thread while each can have a panel, more (up to
    /// `tasksPerThread` per thread) only while each keeps two panels, never more tasks than panels.
    @Test func columnTaskCountsStayInBounds() {
        for threads in 1...4 {
            for panels in 1...80 {
                let tasks = ParallelGemm.columnTaskCount(columns: panels * 16, panel: 16, threads: threads)
                #expect(tasks >= min(threads, panels) && tasks <= max(threads, ParallelGemm.tasksPerThread * threads))
                #expect(tasks <= panels)
                if tasks > threads { #expect(panels / tasks >= 2) }
            }
        }
    }
}

/// A conv → conv → (1x1 conv + residual Add, fused) → dense net whose every step runs a GEMM
/// kernel (activations fused), the
/// path `run(inputs:outputs:)` promises to keep allocation-free. (The reference kernels are
/// plain loops over generic `Shape` helpers; unoptimised debug builds box those generics, so
/// they are not part of this check.)
func gemmNet(batch: Int) -> Model {
    var random = SplitMix64(seed: 21)
    let graph = Graph(
        inputs: [ValueInfo(name: "x", shape: [-1, 12, 12, 3])], outputs: ["y"],
        nodes: [
            Node(name: "c1", operation: .conv2D(Conv2DAttributes(padding: .same, activation: .relu)), inputs: ["x", "w1", "b1"], outputs: ["h1"]),
            Node(name: "c2", operation: .conv2D(Conv2DAttributes(strides: (2, 2), activation: .relu)), inputs: ["h1", "w2", "b2"], outputs: ["h2"]),
            Node(name: "c3", operation: .conv2D(Conv2DAttributes()), inputs: ["h2", "w4", "b4"], outputs: ["h3"]),
            Node(name: "res", operation: .add(activation: .relu), inputs: ["h3", "h2"], outputs: ["h4"]),
            Node(name: "flat", operation: .flatten(axis: 1), inputs: ["h4"], outputs: ["f"]),
            Node(name: "fc", operation: .dense(activation: .none), inputs: ["f", "w3", "b3"], outputs: ["y"]),
        ],
        initializers: [
            "w1": Tensor(shape: [16, 3, 3, 3], floats: random.floats(16 * 27)), "b1": Tensor(shape: [16], floats: random.floats(16)),
            "w2": Tensor(shape: [32, 3, 3, 16], floats: random.floats(32 * 144)), "b2": Tensor(shape: [32], floats: random.floats(32)),
            "w3": Tensor(shape: [10, 800], floats: random.floats(8000)), "b3": Tensor(shape: [10], floats: random.floats(10)),
            "w4": Tensor(shape: [32, 1, 1, 32], floats: random.floats(32 * 32)), "b4": Tensor(shape: [32], floats: random.floats(32)),
        ])
    return Model(graph: graph)
}

/// After the first run at given shapes, `run(inputs:outputs:)` makes no heap allocation, on
/// the caller's thread or the pool's.
@Suite(.serialized, .disabled(if: addressSanitizerIsActive, "the counter interposes malloc, which ASan owns")) struct AllocationTests {
    @Test(arguments: [1, 2], [1, 16])
    func noAllocationPerRun(threads: Int, batch: Int) throws {
        #expect(mk_allocations_supported() == 1)
        let model = gemmNet(batch: batch)
        let session = try Session(model: model, options: SessionOptions.splittingEveryLayer(threads: threads))
        // c1, c2, c3 with the Add fused, fc.
        #expect(session.stepCount == 4)
        let shape = Shape([batch, 12, 12, 3])
        var random = SplitMix64(seed: 3)
        let values = random.floats(shape.elementCount!)
        let outputCount = batch * 10
        let output = UnsafeMutablePointer<Float>.allocate(capacity: outputCount)
        defer { output.deallocate() }
        func tracking(_ on: Int32) {
            // Tasks are claimed by whichever thread comes first: each sleeps so that the others
            // claim theirs, until every pool thread (and the caller) has run one.
            let count = session.pool.threadCount
            var seen: Set<pthread_t> = []
            let ids = UnsafeMutableBufferPointer<pthread_t>.allocate(capacity: count)
            defer { ids.deallocate() }
            while seen.count < count {
                session.pool.run(tasks: count) { task in
                    mk_allocations_track_this_thread(on)
                    ids[task] = pthread_self()
                    usleep(20_000)
                }
                seen.formUnion(ids)
            }
        }
        mk_allocations_lock()
        defer { mk_allocations_unlock() }
        tracking(1)
        defer { tracking(0) }
        try values.withUnsafeBufferPointer { input in
            let inputs = [InputBuffer(data: input.baseAddress!, count: input.count, shape: shape)]
            let outputs = [OutputBuffer(data: output, capacity: outputCount)]
            for _ in 0..<20 { try session.run(inputs: inputs, outputs: outputs) }  // plans for this batch
            mk_allocations_begin()
            for _ in 0..<100 { try session.run(inputs: inputs, outputs: outputs) }
            let allocations = mk_allocations_end()
            if threads == 1 {
                #expect(allocations == 0)
            } else {
                // Threads claim tasks dynamically, so a pool thread may first meet a slightly larger
                // GEMM task late and grow its packing buffers once (at most two per thread). Any
                // per-run allocation would count at least 100.
                #expect(allocations <= 2 * threads, "\(allocations) allocations in 100 runs")
            }
        }
        // The convenience API builds dictionaries and arrays: the counter does see allocations.
        mk_allocations_begin()
        let result = try session.run(Tensor(shape: shape, floats: values))
        let allocations = mk_allocations_end()
        #expect(allocations > 0)
        #expect(Array(UnsafeBufferPointer(start: output, count: outputCount)) == result.floats!)
    }
}

extension SessionOptions {
    /// `threads` workers that split every layer big enough to split, however small, so tests
    /// exercise the parallel paths (the default leaves layers under 64K multiply-adds on one thread).
    static func splittingEveryLayer(threads: Int) -> SessionOptions {
        var options = SessionOptions(threads: threads)
        options.parallelMinimumWork = 0
        return options
    }
}
