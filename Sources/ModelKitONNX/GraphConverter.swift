import ModelKitCore

/// How a runtime tensor's elements are ordered relative to its ONNX shape.
enum Layout: Hashable {
    /// The ONNX order.
    case onnx
    /// A 4-D ONNX NCHW tensor stored NHWC.
    case nhwc
}

/// A value computed at run time by the modelkit graph.
struct TensorValue {
    /// The modelkit value name.
    var name: String
    /// The stored shape (NHWC when `layout` is `.nhwc`), with a dynamic batch counted as 1.
    var shape: [Int]
    var layout: Layout
    /// Whether dimension 0 is the graph's dynamic batch.
    var dynamicBatch: Bool

    /// The shape in ONNX order.
    var onnxShape: [Int] { layout == .nhwc ? [shape[0], shape[3], shape[1], shape[2]] : shape }
    var rank: Int { shape.count }
}

/// What an ONNX value name refers to during conversion.
enum ImportedValue {
    case tensor(TensorValue)
    case constant(Constant)
}

/// ONNX axis -> NHWC stored axis for 4-D tensors (N->0, C->3, H->1, W->2).
let onnxToNHWCAxis = [0, 3, 1, 2]

/// Translates one ONNX graph into a modelkit graph. Single use.
final class GraphConverter {
    let limits: Limits
    let opset: Int64

    var values: [String: ImportedValue] = [:]
    var nodes: [Node] = []
    var initializers: [String: Tensor] = [:]
    var inputs: [ValueInfo] = []
    /// ONNX layout of each graph input, for the model metadata.
    var inputLayouts: [String: String] = [:]

    /// Stored shapes of every modelkit value (batch counted as 1), for shape inference.
    private var shapes: [String: [Int]] = [:]
    private var usedValueNames: Set<String> = []
    private var usedNodeNames: Set<String> = []
    private var reservedOutputNames: Set<String> = []
    private var layoutCache: [String: TensorValue] = [:]
    private var constantCache: [String: String] = [:]
    /// ONNX value name -> number of reads (node inputs and graph outputs).
    var useCounts: [String: Int] = [:]
    /// Dense nodes without bias (stored output name -> node index), for MatMul+Add fusion.
    var denseWithoutBias: [String: Int] = [:]
    /// ONNX value name -> the nodes (and input positions) that read it.
    var consumers: [String: [(node: ONNXNodeProto, input: Int)]] = [:]
    /// Flattened values whose features are in NHWC order (stored name -> the [C,H,W] they came
    /// from); the one Dense that reads each permutes its weight columns to match.
    var nhwcFeatureOrder: [String: (c: Int, h: Int, w: Int)] = [:]
    /// Elements created by constant folding so far, bounded by `limits.maxTensorElements`.
    private var foldedElements = 0

    init(limits: Limits, opset: Int64) {
        self.limits = limits
        self.opset = opset
    }

    static func displayName(_ node: ONNXNodeProto, index: Int) -> String {
        if !node.name.isEmpty { return node.name }
        if let output = node.outputs.first, !output.isEmpty { return "\(node.opType)->\(output)" }
        return "\(node.opType)#\(index)"
    }

    // MARK: Graph

    func convert(_ graph: ONNXGraphProto) throws -> Graph {
        var outputNames: [String] = []
        for output in graph.outputs {
            guard !output.name.isEmpty else { throw ONNXError.invalidGraph(reason: "a graph output has no name") }
            guard !reservedOutputNames.contains(output.name) else {
                throw ONNXError.invalidGraph(reason: "output '\(output.name)' is listed twice")
            }
            reservedOutputNames.insert(output.name)
            outputNames.append(output.name)
        }
        guard !outputNames.isEmpty else { throw ONNXError.invalidGraph(reason: "the graph has no outputs") }

        var initializerNames: Set<String> = []
        for tensor in graph.initializers {
            guard !tensor.name.isEmpty else { throw ONNXError.invalidGraph(reason: "an initializer has no name") }
            guard values[tensor.name] == nil else {
                throw ONNXError.invalidGraph(reason: "initializer '\(tensor.name)' is defined twice")
            }
            values[tensor.name] = .constant(try Constant(tensor, limits: limits))
            initializerNames.insert(tensor.name)
        }
        for node in graph.nodes {
            for (position, name) in node.inputs.enumerated() where !name.isEmpty {
                useCounts[name, default: 0] += 1
                consumers[name, default: []].append((node, position))
            }
        }
        for input in graph.inputs where !initializerNames.contains(input.name) {
            try declareInput(input)
        }
        for name in outputNames { useCounts[name, default: 0] += 1 }

        for (index, node) in graph.nodes.enumerated() {
            let context = NodeContext(proto: node, name: GraphConverter.displayName(node, index: index), converter: self)
            try convertNode(context)
        }

        for name in outputNames {
            guard let value = values[name] else {
                throw ONNXError.invalidGraph(reason: "output '\(name)' is not produced by any node or input")
            }
            guard case .tensor(let tensor) = value else {
                throw ONNXError.invalidGraph(reason: "output '\(name)' is a constant; the graph computes nothing for it")
            }
            try finishOutput(tensor, as: name)
        }
        return Graph(inputs: inputs, outputs: outputNames, nodes: nodes, initializers: initializers)
    }

    private func declareInput(_ input: ONNXValueInfo) throws {
        let name = input.name
        func invalid(_ reason: String) -> ONNXError { ONNXError.invalidGraphInput(name: name, reason: reason) }
        guard !name.isEmpty else { throw ONNXError.invalidGraph(reason: "a graph input has no name") }
        guard values[name] == nil else { throw ONNXError.invalidGraph(reason: "input '\(name)' is defined twice") }
        guard let elementType = input.elementType else { throw invalid("is not a tensor") }
        guard elementType == ONNXDataType.float else {
            throw invalid("has element type \(ONNXDataType.name(elementType)); only FLOAT inputs are supported")
        }
        guard let dims = input.dims else { throw invalid("has no shape") }
        guard dims.count <= limits.maxRank else {
            throw ONNXError.limitExceeded(what: "rank of input '\(name)'", value: dims.count, limit: limits.maxRank)
        }
        var onnxShape: [Int] = []
        var dynamicBatch = false
        for (axis, dim) in dims.enumerated() {
            switch dim {
            case .value(let value):
                guard value >= 1, value <= Int64(Int32.max) else { throw invalid("dimension \(axis) is \(value)") }
                onnxShape.append(Int(value))
            case .parameter, .unknown:
                guard axis == 0 else {
                    let label = dim == .unknown ? "unknown" : "symbolic"
                    throw invalid("dimension \(axis) is \(label); only the first (batch) dimension may be dynamic")
                }
                dynamicBatch = true
                onnxShape.append(1)
            }
        }
        guard let count = Shape.checkedProduct(onnxShape), count <= limits.maxTensorElements else {
            throw ONNXError.limitExceeded(what: "element count of input '\(name)'",
                                          value: Shape.checkedProduct(onnxShape) ?? Int.max, limit: limits.maxTensorElements)
        }
        // A 4-D input is an NCHW image batch (PyTorch and most exporters), kept as modelkit's
        // NHWC; but an input that the graph itself first turns from NHWC into NCHW, as tf2onnx
        // does for Keras models, already is NHWC and is taken as it is.
        let channelsLast = onnxShape.count == 4 && convertsToChannelsFirst(name, shape: onnxShape)
        let layout: Layout = onnxShape.count == 4 && !channelsLast ? .nhwc : .onnx
        let stored = layout == .nhwc ? [onnxShape[0], onnxShape[2], onnxShape[3], onnxShape[1]] : onnxShape
        var declared = stored
        if dynamicBatch { declared[0] = -1 }
        inputs.append(ValueInfo(name: name, dtype: .float32, shape: Shape(declared)))
        if onnxShape.count == 4 { inputLayouts[name] = channelsLast ? "NHWC" : "NCHW" }
        claimValueName(name)
        shapes[name] = stored
        values[name] = .tensor(TensorValue(name: name, shape: stored, layout: layout, dynamicBatch: dynamicBatch))
    }

    /// Whether every reader of 4-D input `name` converts it from NHWC to NCHW: a Transpose with
    /// perm [0,3,1,2], or (with one channel) a Reshape to [N,1,H,W] by a constant shape.
    private func convertsToChannelsFirst(_ name: String, shape: [Int]) -> Bool {
        guard let readers = consumers[name], !readers.isEmpty else { return false }
        return readers.allSatisfy { node, position in
            guard position == 0 else { return false }
            switch node.opType {
            case "Transpose":
                return node.attributes.first { $0.name == "perm" }?.ints == [0, 3, 1, 2]
            case "Reshape":
                guard shape[3] == 1, node.inputs.count == 2, case .constant(let target)? = values[node.inputs[1]],
                      case .int(let dims) = target.elements, dims.count == 4 else { return false }
                return [-1, 0, Int64(shape[0])].contains(dims[0]) && dims[1] == 1
                    && dims[2] == Int64(shape[1]) && dims[3] == Int64(shape[2])
            default:
                return false
            }
        }
    }

    /// Makes graph output `name` an ONNX-ordered tensor called `name`.
    private func finishOutput(_ tensor: TensorValue, as name: String) throws {
        if tensor.name == name && tensor.layout == .onnx { return }
        guard !inputs.contains(where: { $0.name == name }) else {
            throw ONNXError.invalidGraph(reason: "graph input '\(name)' is also an output but needs a layout change")
        }
        let ordered = try materialize(tensor, .onnx, node: name, op: "output", outputName: name)
        if ordered.name == name { return }
        // A plain copy under the output's name (Reshape with every dimension copied aliases).
        _ = try emit(.reshape(shape: [Int](repeating: 0, count: ordered.rank)), inputs: [ordered.name],
                     outputName: name, nodeName: "\(name)/output", layout: .onnx,
                     dynamicBatch: ordered.dynamicBatch, node: name, op: "output")
    }

    // MARK: Names

    private func claimValueName(_ name: String) { usedValueNames.insert(name) }

    /// A value name not used yet and not reserved for a graph output.
    func freshValueName(_ base: String) -> String {
        var candidate = base.isEmpty ? "value" : base
        var counter = 1
        while usedValueNames.contains(candidate) || reservedOutputNames.contains(candidate) {
            candidate = "\(base)_\(counter)"
            counter += 1
        }
        usedValueNames.insert(candidate)
        return candidate
    }

    /// The stored name for ONNX value `onnxName` produced in `layout`: the ONNX name itself
    /// unless that is a graph output that still needs a layout change.
    func outputName(for onnxName: String, layout: Layout) -> String {
        if reservedOutputNames.contains(onnxName) {
            if layout == .onnx && !usedValueNames.contains(onnxName) {
                usedValueNames.insert(onnxName)
                return onnxName
            }
            return freshValueName("\(onnxName)__nhwc")
        }
        return freshValueName(onnxName)
    }

    func freshNodeName(_ base: String) -> String {
        var candidate = base.isEmpty ? "node" : base
        var counter = 1
        while usedNodeNames.contains(candidate) {
            candidate = "\(base)_\(counter)"
            counter += 1
        }
        usedNodeNames.insert(candidate)
        return candidate
    }

    // MARK: Emitting

    /// Appends a modelkit node, checking it with modelkit's own shape inference.
    @discardableResult
    func emit(_ operation: Operation, inputs nodeInputs: [String], outputName: String, nodeName: String,
              layout: Layout, dynamicBatch: Bool, node: String, op: String) throws -> TensorValue {
        let infos: [ValueInfo?] = nodeInputs.map { name in
            name.isEmpty ? nil : ValueInfo(name: name, shape: Shape(shapes[name] ?? []))
        }
        let candidate = Node(name: freshNodeName(nodeName), operation: operation, inputs: nodeInputs, outputs: [outputName])
        let info: ValueInfo
        do {
            info = try ShapeInference.infer(node: candidate, inputs: infos)
        } catch let error as GraphError {
            throw ONNXError.invalidNode(node: node, op: op, reason: error.description)
        }
        guard info.shape.rank <= limits.maxRank,
              let count = info.shape.elementCount, count <= limits.maxTensorElements else {
            throw ONNXError.limitExceeded(what: "element count of '\(outputName)' \(info.shape)",
                                          value: info.shape.elementCount ?? Int.max, limit: limits.maxTensorElements)
        }
        guard nodes.count < limits.maxNodes else {
            throw ONNXError.limitExceeded(what: "node count", value: nodes.count + 1, limit: limits.maxNodes)
        }
        nodes.append(candidate)
        shapes[outputName] = info.shape.dims
        return TensorValue(name: outputName, shape: info.shape.dims, layout: layout, dynamicBatch: dynamicBatch)
    }

    /// The tensor in `layout`, inserting (and caching) a Transpose, or a free Reshape when both
    /// orders are the same in memory (C == 1 or H*W == 1).
    func materialize(_ tensor: TensorValue, _ layout: Layout, node: String, op: String,
                     outputName: String? = nil) throws -> TensorValue {
        if tensor.layout == layout { return tensor }
        guard tensor.rank == 4 else {
            throw ONNXError.invalidNode(node: node, op: op, reason: "layout change needs a 4-D tensor, got \(tensor.onnxShape)")
        }
        let key = "\(tensor.name)|\(layout)"
        if outputName == nil, let cached = layoutCache[key] { return cached }
        let s = tensor.shape
        let sameOrder: Bool
        let target: [Int]
        let permutation: [Int]
        if layout == .nhwc {  // stored NCHW [n,c,h,w] -> [n,h,w,c]
            sameOrder = s[1] == 1 || s[2] * s[3] == 1
            target = [s[0], s[2], s[3], s[1]]
            permutation = [0, 2, 3, 1]
        } else {  // stored NHWC [n,h,w,c] -> [n,c,h,w]
            sameOrder = s[3] == 1 || s[1] * s[2] == 1
            target = [s[0], s[3], s[1], s[2]]
            permutation = [0, 3, 1, 2]
        }
        let suffix = layout == .nhwc ? "nhwc" : "nchw"
        let name = outputName ?? freshValueName("\(tensor.name)__\(suffix)")
        var reshapeTarget = target
        if tensor.dynamicBatch { reshapeTarget[0] = 0 }
        let operation: Operation = sameOrder ? .reshape(shape: reshapeTarget) : .transpose(permutation: permutation)
        let result = try emit(operation, inputs: [tensor.name], outputName: name, nodeName: "\(tensor.name)/to_\(suffix)",
                              layout: layout, dynamicBatch: tensor.dynamicBatch, node: node, op: op)
        if outputName == nil { layoutCache[key] = result }
        return result
    }

    /// A float constant as a graph initializer, in `layout` (a `.nhwc` constant is first
    /// broadcast-aligned to rank 4, then permuted NCHW -> NHWC).
    func initializer(_ constant: Constant, onnxName: String, layout: Layout, node: String, op: String) throws -> TensorValue {
        let key = "\(onnxName)|\(layout)|\(constant.shape)"
        if let name = constantCache[key], let shape = shapes[name] {
            return TensorValue(name: name, shape: shape, layout: layout, dynamicBatch: false)
        }
        guard let floats = constant.floats(), !constant.isInteger else {
            throw ONNXError.unsupportedNode(node: node, op: op,
                                            reason: "integer tensor '\(onnxName)' is used as a run-time float input")
        }
        var stored = Constant(shape: constant.shape, floats: floats)
        if layout == .nhwc {
            guard stored.shape.count <= 4 else {
                throw ONNXError.invalidNode(node: node, op: op, reason: "constant '\(onnxName)' \(stored.shape) has rank > 4")
            }
            stored = stored.reshaped([Int](repeating: 1, count: 4 - stored.shape.count) + stored.shape)
            stored = try fold(node: node, op: op) { try ConstantMath.transpose(stored, permutation: [0, 2, 3, 1]) }
        }
        let name = freshValueName(layout == .nhwc ? "\(onnxName)__nhwc" : onnxName)
        guard let values = stored.floats() else {
            throw ONNXError.invalidNode(node: node, op: op, reason: "constant '\(onnxName)' is not a float tensor")
        }
        initializers[name] = Tensor(shape: Shape(stored.shape), floats: values)
        shapes[name] = stored.shape
        constantCache[key] = name
        return TensorValue(name: name, shape: stored.shape, layout: layout, dynamicBatch: false)
    }

    /// Adds a weight or parameter initializer under a fresh name.
    func addInitializer(_ base: String, shape: [Int], values: [Float]) -> String {
        let name = freshValueName(base)
        initializers[name] = Tensor(shape: Shape(shape), floats: values)
        shapes[name] = shape
        return name
    }

    /// Runs a constant fold, charging its result against the folding budget.
    func fold(node: String, op: String, _ body: () throws -> Constant) throws -> Constant {
        let result: Constant
        do {
            result = try body()
        } catch let error as FoldError {
            throw ONNXError.invalidNode(node: node, op: op, reason: error.reason)
        }
        let (total, overflow) = foldedElements.addingReportingOverflow(result.count)
        guard !overflow, total <= limits.maxTensorElements else {
            throw ONNXError.limitExceeded(what: "total size of folded constants", value: total, limit: limits.maxTensorElements)
        }
        foldedElements = total
        return result
    }

    /// Remaining element budget for one folded constant.
    var foldLimit: Int { max(0, limits.maxTensorElements - foldedElements) }

    /// Renames the output of an already emitted node (used to fuse MatMul + Add into one Dense).
    func fuseBias(into nodeIndex: Int, bias: String, onnxOutput: String, dynamicBatch: Bool) -> TensorValue {
        let oldName = nodes[nodeIndex].outputs[0]
        let shape = shapes[oldName]!
        let name = outputName(for: onnxOutput, layout: .onnx)
        nodes[nodeIndex].inputs.append(bias)
        nodes[nodeIndex].outputs[0] = name
        shapes[name] = shape
        denseWithoutBias[oldName] = nil
        return TensorValue(name: name, shape: shape, layout: .onnx, dynamicBatch: dynamicBatch)
    }
}
