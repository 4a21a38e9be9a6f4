import ModelKitCore

public struct SessionOptions: Sendable {
    /// Worker threads for kernels that parallelise (1 = run on the caller's thread).
    public var threads: Int
    public var limits: Limits
    /// Optimized kernels where the op has one, or the reference kernels everywhere.
    public var kernels: KernelPreference
    /// Layers with fewer multiply-adds than this run on one thread even when `threads` > 1:
    /// waking a worker costs more than it saves on small layers (tests lower it to force splits).
    public var parallelMinimumWork = SessionOptions.defaultParallelMinimumWork

    /// About 2 µs of one AVX2 core. Since a job hand-off to a polling worker is one atomic word
    /// (~0.15 µs), splitting pays down to small layers: at 2 threads, batch 1, interleaved
    /// `modelkit bench --parallel-minimum-work` on a quiet 2-core VM, against the old 4M threshold:
    /// Fashion CNN fp32 best 0.062-0.065 -> 0.040-0.046 ms, int8 0.046-0.055 -> 0.027-0.034 ms,
    /// MobileNetV2 int8 median 7.3 -> 6.1-7.0 ms, MobileNetV2 fp32 within the noise (1M and 256K
    /// fell between).
    public static let defaultParallelMinimumWork = 64 << 10

    public init(threads: Int = 1, limits: Limits = .default, kernels: KernelPreference = .optimized) {
        self.threads = max(1, threads)
        self.limits = limits
        self.kernels = kernels
    }
}

/// Runs one model: verify once at creation, plan per input shape, execute with no per-run
/// allocation in the kernels' path.
///
/// A session is not safe to run from two threads at once (runs share the arena); create one
/// session per thread. Sessions over the same `Model` value share nothing mutable.
public final class Session {
    public let model: Model
    public let options: SessionOptions
    /// Graph inputs as declared (a dynamic batch dimension shows as -1).
    public var inputs: [ValueInfo] { model.graph.inputs }
    /// Graph outputs with shapes for a batch of one.
    public let outputs: [ValueInfo]

    private let constants = ConstantStore()
    private let constantIndex: [String: Int]
    var plan: ExecutionPlan
    /// Kernel worker threads, started once here and reused by every run and re-plan.
    let pool: WorkerPool

    public init(model: Model, options: SessionOptions = SessionOptions()) throws {
        self.model = model
        self.options = options
        pool = WorkerPool(threads: options.threads, minimumWork: options.parallelMinimumWork)
        let graph = model.graph
        let analysis: GraphAnalysis
        do {
            analysis = try graph.analyze(limits: options.limits)
        } catch let error as GraphError {
            throw RuntimeError.invalidGraph(error)
        }
        for input in graph.inputs where input.dtype != .float32 && input.dtype != .int8 {
            throw RuntimeError.unsupportedDType(name: input.name, dtype: input.dtype)
        }
        var constantIndex: [String: Int] = [:]
        for (name, tensor) in graph.initializers.sorted(by: { $0.key < $1.key }) {
            // Shape inference types every use: float32 everywhere, int8 weights and int32 biases.
            guard tensor.dtype != .uint8 else { throw RuntimeError.unsupportedDType(name: name, dtype: tensor.dtype) }
            constantIndex[name] = constants.add(tensor.storage)
        }
        self.constantIndex = constantIndex
        outputs = graph.outputs.map { analysis.values[$0]! }
        plan = try ExecutionPlan(graph: graph, analysis: analysis, inputShapes: Session.shapes(of: analysis, graph),
                                 constants: constants, constantIndex: constantIndex, kernels: options.kernels, pool: pool)
    }

    private static func shapes(of analysis: GraphAnalysis, _ graph: Graph) -> [String: Shape] {
        Dictionary(uniqueKeysWithValues: graph.inputs.map { ($0.name, analysis.values[$0.name]!.shape) })
    }

    /// Bytes of the intermediate-tensor arena for the current plan (im2col scratch included).
    public var arenaBytes: Int { plan.arena.byteCount + plan.scratchBytes }
    /// Bytes of the constants (weights) the session holds.
    public var constantBytes: Int { constants.byteCount }
    /// Number of kernel calls per run (aliasing ops such as Reshape cost none, nor do Adds and
    /// poolings fused into the convolution before them).
    public var stepCount: Int { plan.steps.count }

    /// Re-plans when the input shapes differ from the current plan's (e.g. a new batch size).
    func preparePlan(for shapes: [String: Shape]) throws {
        guard shapes != plan.inputShapes else { return }
        for input in model.graph.inputs {
            guard let shape = shapes[input.name] else { throw RuntimeError.missingInput(name: input.name) }
            let fits = shape.rank == input.shape.rank
                && zip(shape.dims, input.shape.dims).allSatisfy { $1 == -1 ? $0 >= 1 : $0 == $1 }
            guard fits else { throw RuntimeError.inputShapeMismatch(name: input.name, expected: input.shape, actual: shape) }
        }
        let analysis: GraphAnalysis
        do {
            analysis = try model.graph.analyze(inputShapes: shapes, limits: options.limits)
        } catch let error as GraphError {
            throw RuntimeError.invalidGraph(error)
        }
        plan = try ExecutionPlan(graph: model.graph, analysis: analysis, inputShapes: shapes,
                                 constants: constants, constantIndex: constantIndex, kernels: options.kernels, pool: pool)
    }

    /// Runs the model on named inputs (float32, or int8 for int8 inputs) and returns every graph
    /// output: float32 tensors, or int8 tensors with their quantization for int8 outputs.
    public func run(_ feeds: [String: Tensor]) throws -> [String: Tensor] {
        let known = model.graph.inputs.map(\.name)
        for name in feeds.keys where !known.contains(name) {
            throw RuntimeError.unknownInput(name: name, known: known)
        }
        var shapes: [String: Shape] = [:]
        for input in model.graph.inputs {
            guard let tensor = feeds[input.name] else { throw RuntimeError.missingInput(name: input.name) }
            guard tensor.dtype == input.dtype else { throw RuntimeError.unsupportedDType(name: input.name, dtype: tensor.dtype) }
            guard let count = tensor.shape.elementCount, count == tensor.elementCount else {
                throw RuntimeError.inputDataLength(name: input.name, expected: tensor.shape.elementCount ?? -1,
                                                   actual: tensor.elementCount)
            }
            shapes[input.name] = tensor.shape
        }
        try preparePlan(for: shapes)
        for input in model.graph.inputs {
            let destination = plan.pointer(to: input.name)!
            switch feeds[input.name]!.storage {
            case .float32(let values): values.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            case .int8(let values): values.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            case .uint8, .int32: preconditionFailure("input dtypes were checked above")
            }
        }
        execute()
        var results: [String: Tensor] = [:]
        for name in model.graph.outputs {
            let info = plan.values[name]!
            let count = info.shape.elementCount!
            let source = plan.pointer(to: name)!
            switch info.dtype {
            case .int8:
                let codes = Array(UnsafeBufferPointer(start: source.assumingMemoryBound(to: Int8.self), count: count))
                results[name] = Tensor(shape: info.shape, storage: .int8(codes), quantization: info.quantization)
            case .int32:
                let values = Array(UnsafeBufferPointer(start: source.assumingMemoryBound(to: Int32.self), count: count))
                results[name] = Tensor(shape: info.shape, storage: .int32(values), quantization: info.quantization)
            default:
                let floats = source.assumingMemoryBound(to: Float.self)
                results[name] = Tensor(shape: info.shape, floats: Array(UnsafeBufferPointer(start: floats, count: count)))
            }
        }
        return results
    }

    /// Convenience for single-input, single-output models.
    public func run(_ input: Tensor) throws -> Tensor {
        guard model.graph.inputs.count == 1, model.graph.outputs.count == 1 else {
            throw RuntimeError.notSingleInputOutput(inputs: model.graph.inputs.count, outputs: model.graph.outputs.count)
        }
        return try run([model.graph.inputs[0].name: input])[model.graph.outputs[0]]!
    }

    /// When on, every run adds each step's wall time to `profile` (off by default: a run then
    /// reads no clock).
    public var isProfiling = false

    /// Time per step of the current plan over the runs made with `isProfiling` on since the plan
    /// was made (a new input shape makes a new plan) or `resetProfile()` was called.
    public var profile: [StepProfile] { plan.profile }

    public func resetProfile() { plan.stepTimes.reset() }

    func execute() {
        plan.execute(profiling: isProfiling)
    }
}
