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
    /// Packed SIMD GEMM (im2col, pointwise) or the direct single-channel kernel.
    case gemmConv2D(FloatConv2DStep)
    case gemmDense(FloatDenseStep)
    case maxPool2D(MaxPoolStep)
    /// int8 Conv2D or Dense on the packed int8 GEMM with fused requantization.
    case int8Gemm(Int8GemmStep)
    /// The channel-SIMD depthwise convolution (groups == C).
    case depthwiseConv2D(DepthwiseConv2D)
    /// A float Add of two same-shaped inputs.
    case sameShapeAdd(SameShapeAdd)
    /// Float GlobalAveragePool with sequential reads.
    case globalAveragePool(GlobalAveragePoolStep)
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

/// The graph's constants (float32, int8 or int32) as raw buffers for the steps. A store holds
/// each tensor's element array without copying it: the array is never mutated through the store,
/// so its storage neither moves nor is freed while the store lives, and the pointers stay valid
/// (and the contents unchanged) until the session is released. Weights used to be copied here
/// into aligned blocks: a fourth copy of every weight on a cold load, each page of it a page fault.
/// The kernels read constants with unaligned loads, so array alignment (16 bytes) serves.
final class ConstantStore {
    private(set) var buffers: [UnsafeMutableRawBufferPointer] = []
    private(set) var byteCount = 0
    /// Keeps the arrays `buffers` point into alive.
    private var storages: [TensorStorage] = []
    /// What an empty tensor points at: a valid address no step reads.
    private let emptyBlock = UnsafeMutableRawPointer.allocate(byteCount: MemoryPlanner.alignment,
                                                              alignment: MemoryPlanner.alignment)

    func add(_ storage: TensorStorage) -> Int {
        func keep(_ bytes: UnsafeRawBufferPointer) {
            guard let base = bytes.baseAddress, bytes.count > 0 else {
                buffers.append(UnsafeMutableRawBufferPointer(start: emptyBlock, count: 0))
                return
            }
            buffers.append(UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(mutating: base), count: bytes.count))
            byteCount += bytes.count
        }
        storages.append(storage)
        switch storage {
        case .float32(let values): values.withUnsafeBytes(keep)
        case .int8(let values): values.withUnsafeBytes(keep)
        case .uint8(let values): values.withUnsafeBytes(keep)
        case .int32(let values): values.withUnsafeBytes(keep)
        }
        return buffers.count - 1
    }

    deinit { emptyBlock.deallocate() }
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

    /// im2col rows of the GEMM steps (float, or int16 for int8 ones), one block per pool thread;
    /// the steps run one at a time and share it.
    let scratch: UnsafeMutableBufferPointer<Float>
    /// Floats of scratch one thread needs (the buffer itself is never empty).
    let scratchCount: Int

    /// Arena address and shape of each graph input, in graph order (for `Session.run(inputs:outputs:)`).
    let inputBindings: [InputBinding]
    /// Address and element count of each graph output, in graph order.
    let outputBindings: [OutputBinding]
    /// A graph input or output that is not float32, if any.
    let nonFloatIO: String?
    /// Worker threads for the GEMM kernels (nil or one thread: everything on the caller's thread).
    let pool: WorkerPool?
    /// Weights packed for this plan's GEMM steps.
    private let packedWeights: [PlanBuffer]

    init(graph: Graph, analysis: GraphAnalysis, inputShapes: [String: Shape], constants: ConstantStore,
         constantIndex: [String: Int], kernels: KernelPreference, pool: WorkerPool? = nil) throws {
        self.inputShapes = inputShapes
        self.pool = pool
        self.values = analysis.values
        self.constants = constants

        // Resolve aliases to the value that owns the memory; `inPlaceAdds[add node]`: the residual
        // whose memory a fused Add's output takes over.
        var root: [String: String] = [:]
        func rootOf(_ name: String) -> String { root[name] ?? name }
        func resolveRoots(inPlaceAdds: [String?]) {
            root = [:]
            for index in analysis.order {
                let node = graph.nodes[index]
                if ExecutionPlan.isAlias(node.operation), constantIndex[node.inputs[0]] == nil {
                    root[node.outputs[0]] = rootOf(node.inputs[0])
                } else if let residual = inPlaceAdds[index] {
                    root[node.outputs[0]] = rootOf(residual)
                }
            }
        }
        resolveRoots(inPlaceAdds: [String?](repeating: nil, count: graph.nodes.count))

        // Max poolings the int8 convolution before them computes (they get no step of their own).
        let fusedPools = kernels == .optimized
            ? Int8MaxPoolFusion.pairs(graph: graph, analysis: analysis, constantIndex: constantIndex)
            : [Int?](repeating: nil, count: graph.nodes.count)
        // Residual Adds the float convolution before them computes (no step of their own either).
        let fusedAdds = kernels == .optimized && FloatResidualFusion.enabled
            ? FloatResidualFusion.pairs(graph: graph, analysis: analysis, constantIndex: constantIndex, rootOf: rootOf)
            : [FloatResidualFusion.Pair?](repeating: nil, count: graph.nodes.count)
        var isFusedAdd = [Bool](repeating: false, count: graph.nodes.count)
        var inPlaceAdds = [String?](repeating: nil, count: graph.nodes.count)
        for case let pair? in fusedAdds {
            isFusedAdd[pair.add] = true
            if pair.inPlace { inPlaceAdds[pair.add] = pair.residual }
        }
        if inPlaceAdds.contains(where: { $0 != nil }) { resolveRoots(inPlaceAdds: inPlaceAdds) }

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
            if let pool = fusedPools[index] {
                // The convolution's step writes the pooling's output.
                let pooled = rootOf(graph.nodes[pool].outputs[0])
                if firstStep[pooled] == nil { firstStep[pooled] = position }
            }
            if let pair = fusedAdds[index] {
                // The convolution's step writes the Add's output (in place: the residual's memory,
                // alive already); its own output is never stored.
                let sum = rootOf(graph.nodes[pair.add].outputs[0])
                if firstStep[sum] == nil { firstStep[sum] = position }
            }
            lastStep[owner] = max(lastStep[owner] ?? position, position)
        }
        for (index, pair) in fusedAdds.enumerated() where pair != nil {
            firstStep[graph.nodes[index].outputs[0]] = nil
            lastStep[graph.nodes[index].outputs[0]] = nil
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
        var isFusedPool = [Bool](repeating: false, count: graph.nodes.count)
        for case let pool? in fusedPools { isFusedPool[pool] = true }
        var steps: [ExecutionStep] = []
        var packedWeights: [PlanBuffer] = []
        var scratchCount = 0
        for index in analysis.order {
            let node = graph.nodes[index]
            if root[node.outputs[0]] != nil || isFusedPool[index] || isFusedAdd[index] { continue }  // an alias, or computed already
            let fusedAdd = fusedAdds[index]
            // A convolution that takes over an Add writes the Add's output.
            let output = fusedAdd.map { graph.nodes[$0.add].outputs[0] } ?? node.outputs[0]
            if let step = Int8Step.make(node: node, values: analysis.values, address: address,
                                        optimized: kernels == .optimized, pool: pool) {
                var maxPool: (Pool2DAttributes, MutableInt8View)?
                var name = node.name
                if let poolIndex = fusedPools[index], case .maxPool2D(let attributes) = graph.nodes[poolIndex].operation {
                    let pooled = graph.nodes[poolIndex].outputs[0], info = analysis.values[pooled]!
                    maxPool = (attributes, MutableInt8View(address(pooled).assumingMemoryBound(to: Int8.self), info.shape,
                                                           scale: info.quantization!.scales[0],
                                                           zeroPoint: info.quantization!.zeroPoints[0]))
                    name += "+" + graph.nodes[poolIndex].name
                }
                if let gemm = step.gemmStep(maxPool: maxPool, buffers: &packedWeights) {
                    // Floats of scratch holding the int16 rows.
                    scratchCount = max(scratchCount, (gemm.scratchCount + 1) / 2)
                    steps.append(ExecutionStep(nodeName: name, operation: node.operation, kernel: .int8Gemm(gemm),
                                               inputs: [], output: nil))
                    continue
                }
                // The fusion check and the step agree on every condition, so a fused pooling is never dropped.
                precondition(maxPool == nil, "\(node.name): the fused max pooling has no step")
                steps.append(ExecutionStep(nodeName: node.name, operation: node.operation, kernel: .int8(step), inputs: [],
                                           output: nil))
                continue
            }
            let inputs: [TensorView?] = node.inputs.map { name in
                name.isEmpty ? nil : TensorView(UnsafePointer(floats(name)), analysis.values[name]!.shape)
            }
            let outputView = MutableTensorView(floats(output), analysis.values[output]!.shape)
            var kernel = StepKernel.reference
            // The packed steps read weight and bias once, here: they must be constants, not values
            // computed by earlier nodes (those change on every run).
            let parametersAreConstant = node.inputs.dropFirst().allSatisfy { $0.isEmpty || constantIndex[$0] != nil }
            if kernels == .optimized {
                switch node.operation {
                case .conv2D where !parametersAreConstant, .dense where !parametersAreConstant:
                    break
                case .conv2D(let attributes) where Depthwise.applies(input: inputs[0]!.shape, weight: inputs[1]!.shape,
                                                                     attributes: attributes):
                    kernel = .depthwiseConv2D(DepthwiseConv2D(input: inputs[0]!, weight: inputs[1]!,
                                                              bias: inputs.count > 2 ? inputs[2] : nil, attributes: attributes,
                                                              output: outputView, pool: pool))
                case .conv2D(let attributes):
                    let residual = fusedAdd.map { (data: UnsafePointer(floats($0.residual)), activation: $0.activation) }
                    if let conv = FloatConv2DStep.make(input: inputs[0]!, weight: inputs[1]!,
                                                       bias: inputs.count > 2 ? inputs[2] : nil, attributes: attributes,
                                                       output: outputView, residual: residual, buffers: &packedWeights) {
                        kernel = .gemmConv2D(conv)
                        scratchCount = max(scratchCount, conv.scratchCount)
                    }
                case .dense(let activation):
                    kernel = .gemmDense(FloatDenseStep.make(input: inputs[0]!, weight: inputs[1]!,
                                                            bias: inputs.count > 2 ? inputs[2] : nil, activation: activation,
                                                            output: outputView, buffers: &packedWeights))
                case .maxPool2D(let attributes):
                    kernel = .maxPool2D(MaxPoolStep(input: inputs[0]!.data, inputShape: inputs[0]!.shape,
                                                    output: outputView.data, outputShape: outputView.shape,
                                                    attributes: attributes, isInt8: false))
                case .add(let activation):
                    if let add = SameShapeAdd(inputs[0]!, inputs[1]!, activation: activation, output: outputView,
                                              threads: pool?.threadCount ?? 1) {
                        kernel = .sameShapeAdd(add)
                    }
                case .globalAveragePool:
                    kernel = .globalAveragePool(GlobalAveragePoolStep(input: inputs[0]!, output: outputView))
                default:
                    break
                }
            }
            if let pair = fusedAdd {
                // The fusion check and the step agree on every condition, so a fused Add is never dropped.
                guard case .gemmConv2D(let conv) = kernel, conv.residual != nil else {
                    preconditionFailure("\(node.name): the fused Add has no step")
                }
                precondition(pair.inPlace == (conv.residual == UnsafePointer(conv.output)), "\(node.name): in-place mismatch")
                steps.append(ExecutionStep(nodeName: node.name + "+" + graph.nodes[pair.add].name, operation: node.operation,
                                           kernel: kernel, inputs: inputs, output: outputView))
                continue
            }
            steps.append(ExecutionStep(nodeName: node.name, operation: node.operation, kernel: kernel, inputs: inputs,
                                       output: outputView))
        }
        self.steps = steps
        self.packedWeights = packedWeights
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
        stepTimes = StepTimes(steps: steps.count)
    }

    deinit {
        scratch.deallocate()
    }

    /// Per-step time totals, added to only by runs with `profiling` on.
    let stepTimes: StepTimes

    /// Runs every step in order, the big GEMM-backed ones split across the pool; with `profiling`,
    /// adds each step's wall time to `stepTimes` (two clock reads a step, none when off).
    func execute(profiling: Bool = false) {
        let pool = self.pool.flatMap { $0.threadCount > 1 ? $0 : nil }
        let scratch = self.scratch.baseAddress!
        let scratchCount = self.scratchCount
        // Through a buffer pointer: array iteration in unoptimised builds allocates per element.
        steps.withUnsafeBufferPointer { steps in
            guard profiling else {
                for index in steps.indices { ExecutionPlan.run(steps[index], scratch, scratchCount, pool) }
                return
            }
            let times = stepTimes.nanoseconds
            for index in steps.indices {
                let start = StepTimes.now()
                ExecutionPlan.run(steps[index], scratch, scratchCount, pool)
                times[index] &+= StepTimes.now() &- start
            }
            stepTimes.runs += 1
        }
    }

    @inline(__always)
    private static func run(_ step: ExecutionStep, _ scratch: UnsafeMutablePointer<Float>, _ scratchCount: Int,
                            _ pool: WorkerPool?) {
        switch step.kernel {
        case .reference:
            ReferenceKernels.run(step.operation, inputs: step.inputs, output: step.output!)
        case .gemmConv2D(let conv):
            conv.run(scratch: scratch, scratchStride: scratchCount, pool: pool)
        case .gemmDense(let dense):
            dense.run(pool: pool)
        case .maxPool2D(let pool):
            pool.run()
        case .int8Gemm(let gemm):
            gemm.run(scratch: UnsafeMutableRawPointer(scratch).assumingMemoryBound(to: Int16.self),
                     scratchStride: 2 * scratchCount, pool: pool)
        case .depthwiseConv2D(let depthwise):
            depthwise.run(pool: pool)
        case .sameShapeAdd(let add):
            add.run(pool: pool)
        case .globalAveragePool(let average):
            average.run()
        case .int8(let work):
            work.run(pool: pool)
        }
    }

    /// The profile of every step, in run order.
    var profile: [StepProfile] {
        steps.indices.map { index in
            StepProfile(node: steps[index].nodeName, operation: steps[index].operation.name, kernel: steps[index].kernel.name,
                        nanoseconds: stepTimes.nanoseconds[index], runs: stepTimes.runs)
        }
    }

    /// Bytes of scratch memory besides the arena (one im2col block per worker thread).
    var scratchBytes: Int { scratchCount * (pool?.threadCount ?? 1) * MemoryLayout<Float>.stride }

    func pointer(to name: String) -> UnsafeMutableRawPointer? {
        switch locations[name] {
        case .arena(let offset)?: return arena.pointer(at: offset)
        case .constant(let index)?: return constants.buffers[index].baseAddress!
        case nil: return nil
        }
    }
}
