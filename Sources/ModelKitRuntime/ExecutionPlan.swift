import ModelKitCore

/// Where a value lives during execution.
enum ValueLocation {
    /// Byte offset into the arena.
    case arena(offset: Int)
    /// Index into the plan's constant buffers.
    case constant(index: Int)
}

/// Which implementation a step runs.
enum StepKernel {
    /// The plain reference kernel of the op.
    case reference
    /// im2col + packed SIMD GEMM.
    case gemmConv2D(Conv2DAttributes)
    case gemmDense(FusedActivation)
    /// The channel-SIMD depthwise convolution (groups == C).
    case depthwiseConv2D(DepthwiseConv2D)
    /// A float Add of two same-shaped inputs.
    case sameShapeAdd(SameShapeAdd)
    /// An int8 kernel, or a quantize/dequantize between float and int8.
    case int8(Int8Step)
}

/// Which kernels a session may use. Tests pin `.reference` to compare against the optimized ones.
public enum KernelPreference: Sendable {
    case optimized
    case reference
}

/// One kernel call with every address resolved, so executing a step allocates nothing.
struct ExecutionStep {
    var nodeName: String
    var operation: Operation
    var kernel: StepKernel
    /// Float views (empty for int8 steps, which hold their own).
    var inputs: [TensorView?]
    var output: MutableTensorView?
}

/// Owns 64-byte-aligned copies of the graph's constants (float32, int8 or int32). Allocated once
/// per session; the pointers stay valid (and the contents unchanged) until the session is released.
final class ConstantStore {
    private(set) var buffers: [UnsafeMutableRawBufferPointer] = []
    private(set) var byteCount = 0

    func add(_ storage: TensorStorage) -> Int {
        func copy(_ bytes: UnsafeRawBufferPointer) {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, MemoryPlanner.alignment),
                                                                alignment: MemoryPlanner.alignment)
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            buffer.copyMemory(from: bytes)
            buffers.append(buffer)
            byteCount += bytes.count
        }
        switch storage {
        case .float32(let values): values.withUnsafeBytes(copy)
        case .int8(let values): values.withUnsafeBytes(copy)
        case .uint8(let values): values.withUnsafeBytes(copy)
        case .int32(let values): values.withUnsafeBytes(copy)
        }
        return buffers.count - 1
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
    }
}

/// The arena: one aligned block holding every intermediate tensor.
final class Arena {
    let base: UnsafeMutableRawPointer
    let byteCount: Int

    init(byteCount: Int) {
        self.byteCount = byteCount
        base = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, MemoryPlanner.alignment),
                                                alignment: MemoryPlanner.alignment)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, MemoryPlanner.alignment))
    }

    func pointer(at offset: Int) -> UnsafeMutableRawPointer {
        base + offset
    }

    deinit { base.deallocate() }
}

/// The plan for one set of concrete input shapes: step order, value placement, resolved views.
final class ExecutionPlan {
    let inputShapes: [String: Shape]
    let values: [String: ValueInfo]
    let steps: [ExecutionStep]
    let arena: Arena
    let locations: [String: ValueLocation]
    /// Keeps the constants alive as long as any plan points into them.
    let constants: ConstantStore

    /// Ops whose output is their input, reinterpreted: they share the input's memory.
    static func isAlias(_ operation: Operation) -> Bool {
        switch operation {
        case .flatten, .reshape, .dropout: return true
        default: return false
        }
    }

    /// im2col columns shared by the GEMM convolutions (they run one at a time).
    let scratch: UnsafeMutableBufferPointer<Float>
    /// Floats of scratch the steps need (the buffer itself is never empty).
    let scratchCount: Int
    /// int8 im2col columns and int32 accumulators of the optimized int8 kernels.
    let int8Scratch: Int8Scratch
    let int8ScratchBytes: Int

    /// Arena address and shape of each graph input, in graph order (for `Session.run(inputs:outputs:)`).
    let inputBindings: [InputBinding]
    /// Address and element count of each graph output, in graph order.
    let outputBindings: [OutputBinding]
    /// A graph input or output that is not float32, if any.
    let nonFloatIO: String?
    /// Worker threads for the GEMM kernels (nil or one thread: everything on the caller's thread).
    let pool: WorkerPool?

    init(graph: Graph, analysis: GraphAnalysis, inputShapes: [String: Shape], constants: ConstantStore,
         constantIndex: [String: Int], kernels: KernelPreference, pool: WorkerPool? = nil) throws {
        self.inputShapes = inputShapes
        self.pool = pool
        self.values = analysis.values
        self.constants = constants

        // Resolve aliases to the value that owns the memory.
        var root: [String: String] = [:]
        func rootOf(_ name: String) -> String { root[name] ?? name }
        for index in analysis.order {
            let node = graph.nodes[index]
            if ExecutionPlan.isAlias(node.operation), constantIndex[node.inputs[0]] == nil {
                root[node.outputs[0]] = rootOf(node.inputs[0])
            }
        }

        // Lifetimes in step positions, per memory owner.
        var firstStep: [String: Int] = [:]
        var lastStep: [String: Int] = [:]
        for input in graph.inputs {
            firstStep[input.name] = -1
            lastStep[input.name] = -1
        }
        for (position, index) in analysis.order.enumerated() {
            let node = graph.nodes[index]
            for input in node.inputs where !input.isEmpty && constantIndex[input] == nil {
                let owner = rootOf(input)
                lastStep[owner] = max(lastStep[owner] ?? position, position)
            }
            let owner = rootOf(node.outputs[0])
            if firstStep[owner] == nil { firstStep[owner] = position }
            lastStep[owner] = max(lastStep[owner] ?? position, position)
        }
        for output in graph.outputs where constantIndex[output] == nil {
            lastStep[rootOf(output)] = Int.max
        }

        let owners = firstStep.keys.sorted()
        var requests: [MemoryPlanner.Request] = []
        for owner in owners {
            let info = analysis.values[owner]!
            // Shapes were limit-checked by analyze(), so this product cannot overflow.
            let bytes = (info.shape.elementCount ?? 0) * info.dtype.byteSize
            requests.append(.init(size: bytes, firstStep: firstStep[owner]!, lastStep: lastStep[owner]!))
        }
        let (offsets, arenaSize) = MemoryPlanner.plan(requests)
        let arena = Arena(byteCount: arenaSize)
        self.arena = arena

        var locations: [String: ValueLocation] = [:]
        for (position, owner) in owners.enumerated() {
            locations[owner] = .arena(offset: offsets[position])
        }
        for (name, index) in constantIndex { locations[name] = .constant(index: index) }
        for (alias, owner) in root { locations[alias] = locations[owner] }
        self.locations = locations

        func address(_ name: String) -> UnsafeMutableRawPointer {
            switch locations[name]! {
            case .arena(let offset): return arena.pointer(at: offset)
            case .constant(let index): return constants.buffers[index].baseAddress!
            }
        }
        func floats(_ name: String) -> UnsafeMutablePointer<Float> {
            address(name).assumingMemoryBound(to: Float.self)
        }
        var steps: [ExecutionStep] = []
        var scratchCount = 0
        var int8Columns = 0
        var int8Accumulators = 0
        for index in analysis.order {
            let node = graph.nodes[index]
            let output = node.outputs[0]
            if root[output] != nil { continue }  // an alias: nothing to compute
            if let step = Int8Step.make(node: node, values: analysis.values, address: address,
                                        optimized: kernels == .optimized, threads: pool?.threadCount ?? 1) {
                let counts = step.scratchCounts
                int8Columns = max(int8Columns, counts.columns)
                int8Accumulators = max(int8Accumulators, counts.accumulators)
                steps.append(ExecutionStep(nodeName: node.name, operation: node.operation, kernel: .int8(step), inputs: [],
                                           output: nil))
                continue
            }
            let inputs: [TensorView?] = node.inputs.map { name in
                name.isEmpty ? nil : TensorView(UnsafePointer(floats(name)), analysis.values[name]!.shape)
            }
            let outputView = MutableTensorView(floats(output), analysis.values[output]!.shape)
            var kernel = StepKernel.reference
            if kernels == .optimized {
                switch node.operation {
                case .conv2D(let attributes) where attributes.groups == 1:
                    kernel = .gemmConv2D(attributes)
                    scratchCount = max(scratchCount, GemmKernels.conv2DScratchCount(
                        input: inputs[0]!.shape, weight: inputs[1]!.shape, output: outputView.shape, attributes: attributes))
                case .conv2D(let attributes) where Depthwise.applies(input: inputs[0]!.shape, weight: inputs[1]!.shape,
                                                                     attributes: attributes):
                    kernel = .depthwiseConv2D(DepthwiseConv2D(input: inputs[0]!, weight: inputs[1]!,
                                                              bias: inputs.count > 2 ? inputs[2] : nil, attributes: attributes,
                                                              output: outputView, threads: pool?.threadCount ?? 1))
                case .dense(let activation):
                    kernel = .gemmDense(activation)
                case .add(let activation):
                    if let add = SameShapeAdd(inputs[0]!, inputs[1]!, activation: activation, output: outputView,
                                              threads: pool?.threadCount ?? 1) {
                        kernel = .sameShapeAdd(add)
                    }
                default:
                    break
                }
            }
            steps.append(ExecutionStep(nodeName: node.name, operation: node.operation, kernel: kernel, inputs: inputs,
                                       output: outputView))
        }
        self.steps = steps
        self.scratchCount = scratchCount
        // The caller-buffer API moves floats; an int8-I/O model is fed through `run(_:)` instead.
        nonFloatIO = (graph.inputs.map(\.name) + graph.outputs).first { analysis.values[$0]!.dtype != .float32 }
        inputBindings = graph.inputs.map {
            InputBinding(address: floats($0.name), shape: inputShapes[$0.name]!, count: inputShapes[$0.name]!.elementCount!)
        }
        outputBindings = graph.outputs.map {
            OutputBinding(address: UnsafePointer(floats($0)), count: analysis.values[$0]!.shape.elementCount!)
        }
        // One im2col block per worker thread.
        scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(scratchCount * (pool?.threadCount ?? 1), 1))
        scratch.initialize(repeating: 0)
        let columns = UnsafeMutablePointer<Int8>.allocate(capacity: max(int8Columns, 1))
        columns.initialize(repeating: 0, count: max(int8Columns, 1))
        let accumulators = UnsafeMutablePointer<Int32>.allocate(capacity: max(int8Accumulators, 1))
        accumulators.initialize(repeating: 0, count: max(int8Accumulators, 1))
        int8Scratch = Int8Scratch(columns: columns, accumulators: accumulators)
        int8ScratchBytes = int8Columns + int8Accumulators * MemoryLayout<Int32>.stride
    }

    deinit {
        scratch.deallocate()
        int8Scratch.columns.deallocate()
        int8Scratch.accumulators.deallocate()
    }

    /// Runs every step in order.
    func execute() {
        if let pool, pool.threadCount > 1 {
            executeParallel(pool)
            return
        }
        // Through a buffer pointer: array iteration in unoptimised builds allocates per element.
        steps.withUnsafeBufferPointer { steps in
        for step in steps {
            switch step.kernel {
            case .reference:
                ReferenceKernels.run(step.operation, inputs: step.inputs, output: step.output!)
            case .gemmConv2D(let attributes):
                GemmKernels.conv2D(input: step.inputs[0]!, weight: step.inputs[1]!, bias: step.inputs.count > 2 ? step.inputs[2] : nil,
                                   attributes: attributes, output: step.output!, scratch: scratch.baseAddress)
            case .gemmDense(let activation):
                GemmKernels.dense(input: step.inputs[0]!, weight: step.inputs[1]!, bias: step.inputs.count > 2 ? step.inputs[2] : nil,
                                  activation: activation, output: step.output!)
            case .depthwiseConv2D(let depthwise):
                depthwise.run(pool: nil)
            case .sameShapeAdd(let add):
                add.run(pool: nil)
            case .int8(let work):
                work.run(scratch: int8Scratch)
            }
        }
        }
    }

    /// Runs every step in order, the GEMM-backed ones split across `pool`.
    private func executeParallel(_ pool: WorkerPool) {
        steps.withUnsafeBufferPointer { steps in
        for step in steps {
            switch step.kernel {
            case .reference:
                ReferenceKernels.run(step.operation, inputs: step.inputs, output: step.output!)
            case .gemmConv2D(let attributes):
                ParallelGemm.conv2D(input: step.inputs[0]!, weight: step.inputs[1]!,
                                    bias: step.inputs.count > 2 ? step.inputs[2] : nil, attributes: attributes,
                                    output: step.output!, scratch: scratch.baseAddress!, scratchStride: scratchCount,
                                    pool: pool)
            case .gemmDense(let activation):
                ParallelGemm.dense(input: step.inputs[0]!, weight: step.inputs[1]!,
                                   bias: step.inputs.count > 2 ? step.inputs[2] : nil, activation: activation,
                                   output: step.output!, pool: pool)
            case .depthwiseConv2D(let depthwise):
                depthwise.run(pool: pool)
            case .sameShapeAdd(let add):
                add.run(pool: pool)
            case .int8(let work):
                work.run(scratch: int8Scratch, pool: pool)
            }
        }
        }
    }

    /// Bytes of scratch memory besides the arena (one im2col block per worker thread).
    var scratchBytes: Int { scratchCount * (pool?.threadCount ?? 1) * MemoryLayout<Float>.stride + int8ScratchBytes }

    func pointer(to name: String) -> UnsafeMutableRawPointer? {
        switch locations[name] {
        case .arena(let offset)?: return arena.pointer(at: offset)
        case .constant(let index)?: return constants.buffers[index].baseAddress!
        case nil: return nil
        }
    }
}
