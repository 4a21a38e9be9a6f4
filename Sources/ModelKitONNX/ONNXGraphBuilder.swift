import ModelKitCore

/// Translates one validated modelkit graph into ONNX nodes, tracking the layout of every 4-D
/// value. Single use.
final class ONNXGraphBuilder {
    /// How a modelkit value is held in the ONNX graph.
    enum Form: Hashable {
        /// The modelkit shape and element order.
        case plain
        /// A 4-D NHWC modelkit value held as its NCHW transpose.
        case nchw
    }

    /// NHWC axis -> NCHW axis (N->0, H->2, W->3, C->1).
    static let nhwcToNCHW = [0, 2, 3, 1]

    let graph: Graph
    let values: [String: ValueInfo]
    private(set) var nodes: [ONNXOutNode] = []
    private(set) var initializers: [ONNXOutTensor] = []
    private(set) var inputs: [ONNXOutValueInfo] = []
    private(set) var outputs: [ONNXOutValueInfo] = []

    /// Run-time value -> (ONNX name, form) of its first emitted version.
    var defined: [String: (name: String, form: Form)] = [:]
    /// "value|form" -> ONNX name, for conversions and constants already emitted.
    var converted: [String: String] = [:]
    private var usedNames: Set<String> = []
    private let graphOutputs: Set<String>

    init(graph: Graph, analysis: GraphAnalysis) {
        self.graph = graph
        self.values = analysis.values
        graphOutputs = Set(graph.outputs)
        usedNames.formUnion(analysis.values.keys)
        usedNames.formUnion(graph.nodes.map(\.name))
    }

    func build() throws {
        let dynamic = graph.inputs.contains { $0.shape.dims.first == -1 }
        for input in graph.inputs {
            let elementType = try Self.elementType(input.dtype, name: input.name)
            var dims: [ONNXOutDimension] = input.shape.dims.map { $0 == -1 ? .parameter("N") : .value($0) }
            let form: Form = input.shape.rank == 4 ? .nchw : .plain
            if form == .nchw { dims = [dims[0], dims[3], dims[1], dims[2]] }
            inputs.append(ONNXOutValueInfo(name: input.name, dims: dims, elementType: elementType))
            defined[input.name] = (input.name, form)
        }
        // Output dimensions that follow a dynamic batch are written as symbols.
        let batchTwo = dynamic ? try? graph.analyze(inputShapes: Dictionary(uniqueKeysWithValues: graph.inputs.map {
            ($0.name, Shape($0.shape.dims.map { $0 == -1 ? 2 : $0 }))
        })).values : nil
        for index in try order() {
            try emit(graph.nodes[index])
        }
        for name in graph.outputs {
            guard graph.initializers[name] == nil else {
                throw ONNXExportError.unsupportedOutput(name: name, reason: "it is a constant")
            }
            let (onnxName, form) = defined[name]!
            if onnxName != name || form != .plain {
                guard !graph.inputs.contains(where: { $0.name == name }) else {
                    throw ONNXExportError.unsupportedOutput(name: name, reason: "it is a 4-D graph input, which ONNX holds as NCHW")
                }
                if form == .nchw {
                    addNode("Transpose", [onnxName], [name], name: "\(name)/to_nhwc", ["perm": .ints([0, 2, 3, 1])])
                } else {
                    addNode("Identity", [onnxName], [name], name: "\(name)/output")
                }
            }
            let one = values[name]!.shape.dims
            let two = batchTwo?[name]?.shape.dims ?? one
            let dims: [ONNXOutDimension] = one.indices.map { axis in
                if one[axis] == two[axis] { return .value(one[axis]) }
                return one[axis] == 1 && two[axis] == 2 ? .parameter("N") : .parameter("\(name)_\(axis)")
            }
            outputs.append(ONNXOutValueInfo(name: name, dims: dims,
                                            elementType: try Self.elementType(values[name]!.dtype, name: name)))
        }
    }

    /// Node indices in a valid execution order (ONNX requires topological order).
    private func order() throws -> [Int] {
        do {
            return try graph.analyze().order
        } catch let error as GraphError {
            throw ONNXExportError.invalidGraph(error)
        }
    }

    // MARK: Names and values

    func fresh(_ base: String) -> String {
        var candidate = base
        var counter = 1
        while usedNames.contains(candidate) {
            candidate = "\(base)_\(counter)"
            counter += 1
        }
        usedNames.insert(candidate)
        return candidate
    }

    func addNode(_ opType: String, _ inputs: [String], _ outputs: [String], name: String,
                         _ attributes: KeyValuePairs<String, ONNXAttributeValue> = [:]) {
        nodes.append(ONNXOutNode(name: fresh(name), opType: opType, inputs: inputs, outputs: outputs,
                                 attributes: attributes.map { ($0.key, $0.value) }))
    }

    func addInitializer(_ base: String, dims: [Int], _ data: ONNXOutTensorData) -> String {
        let name = fresh(base)
        initializers.append(ONNXOutTensor(name: name, dims: dims, data: data))
        return name
    }

    func int64s(_ base: String, _ values: [Int]) -> String {
        addInitializer(base, dims: [values.count], .int64(values.map { Int64($0) }))
    }

    func scalar(_ base: String, _ value: Float) -> String {
        addInitializer(base, dims: [], .float([value]))
    }

    private func rank(_ name: String) -> Int { values[name]?.shape.rank ?? 0 }

    /// The current form of a run-time value, or plain for a constant.
    private func form(of name: String) -> Form {
        defined[name]?.form ?? .plain
    }

    /// The ONNX name holding modelkit value `name` in `form`, converting (and caching) as needed:
    /// constants are rewritten at export, run-time values get a Transpose.
    func value(_ name: String, _ form: Form, node: Node) throws -> String {
        let key = "\(name)|\(form)"
        if let cached = converted[key] { return cached }
        if let tensor = graph.initializers[name] {
            let result: String
            switch form {
            case .plain:
                usedNames.remove(name)
                result = addInitializer(name, dims: tensor.shape.dims, try Self.data(of: tensor, name: name))
            case .nchw:
                guard tensor.shape.rank <= 4 else {
                    throw ONNXExportError.unsupportedNode(node: node.name, op: node.operation.name,
                                                          reason: "constant '\(name)' \(tensor.shape) has rank > 4")
                }
                let dims = [Int](repeating: 1, count: 4 - tensor.shape.rank) + tensor.shape.dims
                let transposed = try Self.transposedNHWCToNCHW(Self.data(of: tensor, name: name), dims: dims)
                result = addInitializer("\(name)__nchw", dims: [dims[0], dims[3], dims[1], dims[2]], transposed)
            }
            converted[key] = result
            return result
        }
        guard let (onnxName, current) = defined[name] else {
            throw ONNXExportError.unsupportedNode(node: node.name, op: node.operation.name, reason: "input '\(name)' is undefined")
        }
        if current == form { return onnxName }
        guard rank(name) == 4 else {
            throw ONNXExportError.unsupportedNode(node: node.name, op: node.operation.name,
                                                  reason: "layout change of '\(name)' needs a 4-D value")
        }
        let target = fresh(form == .nchw ? "\(name)__nchw" : "\(name)__nhwc")
        let permutation: [Int64] = form == .nchw ? [0, 3, 1, 2] : [0, 2, 3, 1]
        addNode("Transpose", [onnxName], [target], name: "\(name)/to_\(form == .nchw ? "nchw" : "nhwc")",
                ["perm": .ints(permutation)])
        converted[key] = target
        return target
    }

    static func transposeNHWCToNCHW<Element: Numeric>(_ values: [Element], dims: [Int]) -> [Element] {
        let (n, h, w, c) = (dims[0], dims[1], dims[2], dims[3])
        var result = [Element](repeating: 0, count: values.count)
        for b in 0..<n {
            for y in 0..<h {
                for x in 0..<w {
                    for ch in 0..<c {
                        result[((b * c + ch) * h + y) * w + x] = values[((b * h + y) * w + x) * c + ch]
                    }
                }
            }
        }
        return result
    }

    /// The ONNX name a node writes modelkit value `name` to, in `form`. Graph outputs keep
    /// their name for the final plain version.
    func outputName(_ name: String, _ form: Form) -> String {
        if form == .nchw && graphOutputs.contains(name) { return fresh("\(name)__nchw") }
        return name
    }

    // MARK: Nodes

    private func emit(_ node: Node) throws {
        let output = node.outputs[0]
        let op = node.operation
        // int8 arithmetic becomes the float op between DequantizeLinear inputs and a
        // QuantizeLinear output (QDQ form); int8 data movement stays on the int8 tensors.
        let qdq = runsInQDQForm(node)
        func unsupported(_ reason: String) -> ONNXExportError {
            ONNXExportError.unsupportedNode(node: node.name, op: op.name, reason: reason)
        }
        func input(_ position: Int, _ form: Form) throws -> String {
            qdq ? try dequantized(node.inputs[position], form, node: node) : try value(node.inputs[position], form, node: node)
        }
        func optional(_ position: Int, _ form: Form) throws -> String? {
            position < node.inputs.count && !node.inputs[position].isEmpty ? try input(position, form) : nil
        }
        /// Emits the core op (and a fused activation after it, and in QDQ form the output's
        /// QuantizeLinear after that), defining `output` in `form`.
        func produce(_ opType: String, _ inputs: [String], _ form: Form, activation: FusedActivation = .none,
                     _ attributes: KeyValuePairs<String, ONNXAttributeValue> = [:]) throws {
            let target = outputName(output, form)
            let floatResult = qdq ? fresh("\(output)__float") : target
            let coreOutput = activation == .none ? floatResult : fresh("\(output)__preact")
            addNode(opType, inputs, [coreOutput], name: node.name, attributes)
            if activation != .none { emitActivation(activation, coreOutput, floatResult, name: "\(node.name)/activation") }
            if qdq { try addQuantize(floatResult, into: target, parametersOf: output, node: node) }
            defined[output] = (target, form)
        }

        switch op {
        case .conv2D(let a):
            let x = try input(0, .nchw), w = try input(1, .nchw)
            let inShape = values[node.inputs[0]]!.shape, wShape = values[node.inputs[1]]!.shape
            let kernel = (wShape[1], wShape[2])
            let p = a.padding.resolve(height: inShape[1], width: inShape[2], kernel: kernel,
                                      stride: (a.strideH, a.strideW), dilation: (a.dilationH, a.dilationW))
            var inputs = [x, w]
            if let b = try optional(2, .plain) { inputs.append(b) }
            try produce("Conv", inputs, .nchw, activation: a.activation, [
                "kernel_shape": .ints([Int64(kernel.0), Int64(kernel.1)]),
                "strides": .ints([Int64(a.strideH), Int64(a.strideW)]),
                "dilations": .ints([Int64(a.dilationH), Int64(a.dilationW)]),
                "pads": .ints([p.top, p.left, p.bottom, p.right].map { Int64($0) }),
                "group": .int(Int64(a.groups)),
            ])

        case .dense(let activation):
            var inputs = [try input(0, .plain), try input(1, .plain)]
            if let b = try optional(2, .plain) { inputs.append(b) }
            try produce("Gemm", inputs, .plain, activation: activation, ["transB": .int(1)])

        case .maxPool2D(let a), .averagePool2D(let a):
            let x = try input(0, .nchw)
            let inShape = values[node.inputs[0]]!.shape
            let p = a.padding.resolve(height: inShape[1], width: inShape[2], kernel: (a.kernelH, a.kernelW),
                                      stride: (a.strideH, a.strideW))
            let pads = ONNXAttributeValue.ints([p.top, p.left, p.bottom, p.right].map { Int64($0) })
            let kernel = ONNXAttributeValue.ints([Int64(a.kernelH), Int64(a.kernelW)])
            let strides = ONNXAttributeValue.ints([Int64(a.strideH), Int64(a.strideW)])
            if case .maxPool2D = op {
                try produce("MaxPool", [x], .nchw, ["kernel_shape": kernel, "strides": strides, "pads": pads])
            } else {
                try produce("AveragePool", [x], .nchw, ["kernel_shape": kernel, "strides": strides, "pads": pads,
                                                    "count_include_pad": .int(a.countIncludePad ? 1 : 0)])
            }

        case .globalAveragePool:
            try produce("GlobalAveragePool", [try input(0, .nchw)], .nchw)

        case .quantizeLinear:
            let form = form(of: node.inputs[0])
            let target = outputName(output, form)
            try addQuantize(try input(0, form), into: target, parametersOf: output, node: node)
            defined[output] = (target, form)

        case .dequantizeLinear:
            let form = form(of: node.inputs[0])
            let target = outputName(output, form)
            try addDequantize(node.inputs[0], try input(0, form), form, into: target, node: node)
            defined[output] = (target, form)

        case .relu, .sigmoid, .tanh, .hardSwish, .dropout:
            let form = form(of: node.inputs[0])
            let names: [Operation: String] = [.relu: "Relu", .sigmoid: "Sigmoid", .tanh: "Tanh", .hardSwish: "HardSwish"]
            if case .dropout = op, values[output]?.dtype == .int8 {
                try produce("Identity", [try input(0, form)], form)  // ONNX Dropout takes floats only
            } else if case .dropout(let rate) = op {
                try produce("Dropout", [try input(0, form), scalar("\(node.name).ratio", rate)], form)
            } else {
                try produce(names[op]!, [try input(0, form)], form)
            }

        case .clip(let lo, let hi):
            let form = form(of: node.inputs[0])
            try produce("Clip", [try input(0, form), scalar("\(node.name).min", lo), scalar("\(node.name).max", hi)], form)

        case .leakyRelu(let alpha):
            let form = form(of: node.inputs[0])
            try produce("LeakyRelu", [try input(0, form)], form, ["alpha": .float(alpha)])

        case .softmax(let axis):
            let form = form(of: node.inputs[0])
            let r = rank(node.inputs[0])
            let normalized = axis < 0 ? axis + r : axis
            let onnxAxis = form == .nchw ? Self.nhwcToNCHW[normalized] : normalized
            try produce("Softmax", [try input(0, form)], form, ["axis": .int(Int64(onnxAxis))])

        case .flatten(let axis):
            try produce("Flatten", [try input(0, .plain)], .plain, ["axis": .int(Int64(axis))])

        case .reshape(let shape):
            try produce("Reshape", [try input(0, .plain), int64s("\(node.name).shape", shape)], .plain)

        case .transpose(let permutation):
            let form = form(of: node.inputs[0])
            let perm = form == .nchw ? permutation.map { Self.nhwcToNCHW[$0] } : permutation
            try produce("Transpose", [try input(0, form)], .plain, ["perm": .ints(perm.map { Int64($0) })])

        case .add(let activation):
            let form = broadcastForm(node)
            try produce("Add", [try input(0, form), try input(1, form)], form, activation: activation)

        case .mul:
            let form = broadcastForm(node)
            try produce("Mul", [try input(0, form), try input(1, form)], form)

        case .concat(let axis):
            let r = rank(output)
            let normalized = axis < 0 ? axis + r : axis
            let form = broadcastForm(node)
            let names = try node.inputs.indices.map { try input($0, form) }
            try produce("Concat", names, form, ["axis": .int(Int64(form == .nchw ? Self.nhwcToNCHW[normalized] : normalized))])

        case .pad(let pads, let padValue):
            let r = rank(node.inputs[0])
            let form: Form = r == 4 && form(of: node.inputs[0]) == .nchw ? .nchw : .plain
            var onnxPads = pads
            if form == .nchw {
                let order = [0, 3, 1, 2]  // NCHW axis -> NHWC axis
                onnxPads = order.map { pads[$0] } + order.map { pads[$0 + 4] }
            }
            try produce("Pad", [try input(0, form), int64s("\(node.name).pads", onnxPads), scalar("\(node.name).value", padValue)],
                    form, ["mode": .string("constant")])

        case .batchNormalization(let epsilon):
            let r = rank(node.inputs[0])
            guard r == 2 || r == 4 else { throw unsupported("input of rank \(r); ONNX BatchNormalization takes [N,C] or [N,C,H,W]") }
            let form: Form = r == 4 ? .nchw : .plain
            let names = [try input(0, form)] + (try (1...4).map { try input($0, .plain) })
            try produce("BatchNormalization", names, form, ["epsilon": .float(epsilon)])
        }
    }

    /// NCHW when the output is 4-D, some run-time input is held NCHW, and every input is 4-D
    /// or a constant (which is broadcast-aligned and permuted at export); plain otherwise.
    private func broadcastForm(_ node: Node) -> Form {
        guard rank(node.outputs[0]) == 4 else { return .plain }
        var anyNCHW = false
        for name in node.inputs {
            if graph.initializers[name] != nil { continue }
            guard rank(name) == 4 else { return .plain }
            if form(of: name) == .nchw { anyNCHW = true }
        }
        return anyNCHW ? .nchw : .plain
    }

    func emitActivation(_ activation: FusedActivation, _ input: String, _ output: String, name: String) {
        switch activation {
        case .none:
            addNode("Identity", [input], [output], name: name)
        case .relu:
            addNode("Relu", [input], [output], name: name)
        case .clip(let lo, let hi):
            addNode("Clip", [input, scalar("\(name).min", lo), scalar("\(name).max", hi)], [output], name: name)
        case .leakyRelu(let alpha):
            addNode("LeakyRelu", [input], [output], name: name, ["alpha": .float(alpha)])
        }
    }
}
