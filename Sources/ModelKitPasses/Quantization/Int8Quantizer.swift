import ModelKitCore

/// Options of post-training int8 quantization.
public struct QuantizationOptions: Sendable {
    public var method: CalibrationMethod
    /// One weight scale per tensor instead of per output channel (still stored per channel).
    public var perTensorWeights: Bool
    /// int8 graph inputs (and int8 outputs where the last op is int8) instead of float ones.
    public var int8IO: Bool
    /// Nodes (by name, in the optimized float graph) that stay float although they could run in
    /// int8: the accuracy guard's choice. Their inputs are dequantized and their output quantized
    /// again where an int8 op reads it.
    public var floatNodes: Set<String>

    public init(method: CalibrationMethod = .minMax, perTensorWeights: Bool = false, int8IO: Bool = false,
                floatNodes: Set<String> = []) {
        self.method = method
        self.perTensorWeights = perTensorWeights
        self.int8IO = int8IO
        self.floatNodes = floatNodes
    }
}

/// Post-training int8 quantization of a float graph (run the standard passes first, so batch
/// normalization is folded and activations are fused):
/// - Conv2D, Dense and Add run in int8; weights symmetric per output channel ([-127, 127], zero
///   point 0), bias int32 with scale input scale × weight scale; activations asymmetric per tensor
///   from the calibrated ranges; fused ReLU/ReLU6 become clamps.
/// - MaxPool2D, AveragePool2D, GlobalAveragePool, Flatten, Reshape, Concat and Dropout stay int8
///   when their inputs are, sharing one set of parameters with them (ranges merged), so they need
///   no requantization.
/// - Every other op stays float: a DequantizeLinear goes before it (e.g. before Softmax) and a
///   QuantizeLinear after it where an int8 op reads the result. Model inputs and outputs stay float
///   unless `int8IO`.
public struct Int8Quantizer: Sendable {
    public var options: QuantizationOptions

    public init(options: QuantizationOptions = QuantizationOptions()) {
        self.options = options
    }

    /// Suffixes of the values the quantizer adds.
    public static let int8Suffix = "/int8"
    public static let floatSuffix = "/float"

    public func quantize(_ graph: Graph, ranges: ActivationRanges) throws -> Graph {
        let analysis: GraphAnalysis
        do {
            analysis = try graph.analyze()
        } catch let error as GraphError {
            throw QuantizationError.invalidGraph(reason: error.description)
        }
        let isConstant = { (name: String) in graph.initializers[name] != nil }
        let graphOutputs = Set(graph.outputs)

        // 1. Which nodes run in int8.
        var int8Values = Set<String>()
        if options.int8IO { for input in graph.inputs { int8Values.insert(input.name) } }
        var int8Nodes = Set<Int>()
        for index in analysis.order {
            let node = graph.nodes[index]
            let data = node.inputs.filter { !$0.isEmpty }
            var chosen = false
            switch node.operation {
            case .conv2D, .dense:
                let weight = graph.initializers[node.inputs[1]]
                let biasOK = node.inputs.count < 3 || node.inputs[2].isEmpty || graph.initializers[node.inputs[2]]?.floats != nil
                let activationOK: Bool
                if case .leakyRelu = node.operation.fusedActivation ?? .none { activationOK = false } else { activationOK = true }
                chosen = weight?.floats != nil && biasOK && activationOK && !isConstant(node.inputs[0])
            case .add(let activation):
                if case .leakyRelu = activation { chosen = false } else { chosen = !data.contains(where: isConstant) }
            case .maxPool2D, .averagePool2D, .globalAveragePool, .flatten, .reshape, .concat, .dropout:
                chosen = data.allSatisfy { int8Values.contains($0) }
            default:
                chosen = false
            }
            if options.floatNodes.contains(node.name) { chosen = false }
            if chosen {
                int8Nodes.insert(index)
                int8Values.insert(node.outputs[0])
            }
        }

        // 2. Shared parameters: pass-through ops join their inputs' group (union-find on names).
        var parent: [String: String] = [:]
        func find(_ name: String) -> String {
            var current = name
            while let next = parent[current], next != current { current = next }
            return current
        }
        func union(_ a: String, _ b: String) {
            let (ra, rb) = (find(a), find(b))
            if ra != rb { parent[ra] = rb }
        }
        for index in int8Nodes {
            let node = graph.nodes[index]
            switch node.operation {
            case .maxPool2D, .averagePool2D, .globalAveragePool, .flatten, .reshape, .concat, .dropout:
                for input in node.inputs where !input.isEmpty { union(input, node.outputs[0]) }
            default:
                break
            }
        }
        var groupRange: [String: ClosedRange<Float>] = [:]
        for name in int8Values {
            guard let range = ranges.ranges[name] else {
                throw QuantizationError.invalidGraph(reason: "calibration recorded no range for '\(name)'")
            }
            let root = find(name)
            let merged = groupRange[root].map { min($0.lowerBound, range.lowerBound)...max($0.upperBound, range.upperBound) }
            groupRange[root] = merged ?? range
        }
        // Values only quantized for a consumer (float producers) use their own range.
        func parameters(_ name: String) throws -> QuantizationParameters {
            if let range = groupRange[find(name)] { return ActivationRanges.parameters(for: range) }
            guard let range = ranges.ranges[name] else {
                throw QuantizationError.invalidGraph(reason: "calibration recorded no range for '\(name)'")
            }
            return ActivationRanges.parameters(for: range)
        }

        // 3. Rewrite. Each original value has a float and/or an int8 version, made on demand.
        var nodes: [Node] = []
        var initializers = graph.initializers
        var valueQuantization: [String: QuantizationParameters] = [:]
        var int8Name: [String: String] = [:]
        var floatName: [String: String] = [:]
        // A bias shared by several int8 Conv2D/Dense nodes needs one int32 copy per node: each is
        // scaled by its own node's input scale × weight scales.
        var biasUsers: [String: Int] = [:]
        for index in int8Nodes {
            let node = graph.nodes[index]
            if case .conv2D = node.operation, node.inputs.count > 2, !node.inputs[2].isEmpty { biasUsers[node.inputs[2], default: 0] += 1 }
            if case .dense = node.operation, node.inputs.count > 2, !node.inputs[2].isEmpty { biasUsers[node.inputs[2], default: 0] += 1 }
        }
        var inputs = graph.inputs
        for (position, input) in graph.inputs.enumerated() {
            if options.int8IO {
                inputs[position].dtype = .int8
                inputs[position].quantization = try parameters(input.name)
                int8Name[input.name] = input.name
            } else {
                floatName[input.name] = input.name
            }
        }
        for name in graph.initializers.keys { floatName[name] = name }
        func asInt8(_ name: String) throws -> String {
            if let existing = int8Name[name] { return existing }
            let target = name + Int8Quantizer.int8Suffix
            nodes.append(Node(name: target + "/quantize", operation: .quantizeLinear, inputs: [floatName[name]!],
                              outputs: [target]))
            valueQuantization[target] = try parameters(name)
            int8Name[name] = target
            return target
        }
        func asFloat(_ name: String) -> String {
            if let existing = floatName[name] { return existing }
            let source = int8Name[name]!
            let target = source == name ? name + Int8Quantizer.floatSuffix : name
            nodes.append(Node(name: target + "/dequantize", operation: .dequantizeLinear, inputs: [source], outputs: [target]))
            floatName[name] = target
            return target
        }

        for index in analysis.order {
            var node = graph.nodes[index]
            let output = node.outputs[0]
            guard int8Nodes.contains(index) else {
                node.inputs = node.inputs.map { $0.isEmpty ? $0 : asFloat($0) }
                floatName[output] = output
                nodes.append(node)
                continue
            }
            let target = options.int8IO && graphOutputs.contains(output) ? output : output + Int8Quantizer.int8Suffix
            let outputParameters = try parameters(output)
            switch node.operation {
            case .conv2D, .dense:
                let x = try asInt8(node.inputs[0])
                let inputScale = try parameters(node.inputs[0]).scales[0]
                let sharedBias = node.inputs.count > 2 && (biasUsers[node.inputs[2]] ?? 0) > 1
                let (weightName, biasName) = try quantizeWeights(node, inputScale: inputScale, sharedBias: sharedBias,
                                                                 into: &initializers)
                node.inputs = [x, weightName] + (biasName.map { [$0] } ?? [])
            default:
                node.inputs = try node.inputs.map { $0.isEmpty ? $0 : try asInt8($0) }
            }
            node.outputs = [target]
            valueQuantization[target] = outputParameters
            int8Name[output] = target
            nodes.append(node)
        }
        var outputs: [String] = []
        for output in graph.outputs {
            if options.int8IO, let name = int8Name[output] {
                outputs.append(name)
            } else {
                outputs.append(asFloat(output))
            }
        }

        // Float weights the int8 nodes replaced are dropped.
        let used = Set(nodes.flatMap(\.inputs) + outputs)
        initializers = initializers.filter { used.contains($0.key) }
        let result = Graph(inputs: inputs, outputs: outputs, nodes: nodes, initializers: initializers,
                           valueQuantization: valueQuantization)
        do {
            _ = try result.analyze()
        } catch let error as GraphError {
            throw QuantizationError.invalidGraph(reason: "the quantized graph is invalid: \(error)")
        }
        return result
    }

    /// Adds the int8 weight ("<weight>/int8") and int32 bias ("<bias>/int32", or "<bias>/<node>/int32"
    /// when `sharedBias`) of a Conv2D or Dense. A shared weight yields the same codes for every user.
    func quantizeWeights(_ node: Node, inputScale: Float, sharedBias: Bool, into initializers: inout [String: Tensor])
        throws -> (weight: String, bias: String?) {
        let weight = initializers[node.inputs[1]]!
        let values = weight.floats!
        let channels = weight.shape[0]
        let depth = channels == 0 ? 0 : values.count / channels
        var absMax = (0..<channels).map { o in
            values[(o * depth)..<((o + 1) * depth)].reduce(Float(0)) { max($0, abs($1)) }
        }
        if options.perTensorWeights {
            let overall = absMax.max() ?? 0
            absMax = absMax.map { _ in overall }
        }
        let scales = absMax.map { $0 > 0 && $0.isFinite ? $0 / 127 : Float(1) }
        var codes = [Int8](repeating: 0, count: values.count)
        for o in 0..<channels {
            for k in 0..<depth {
                let q = (values[o * depth + k] / scales[o]).rounded()
                codes[o * depth + k] = Int8(min(max(q, -127), 127))
            }
        }
        let weightName = node.inputs[1] + Int8Quantizer.int8Suffix
        initializers[weightName] = Tensor(shape: weight.shape, storage: .int8(codes),
                                          quantization: QuantizationParameters(scales: scales,
                                                                               zeroPoints: [Int32](repeating: 0, count: channels),
                                                                               axis: 0))
        guard node.inputs.count > 2, !node.inputs[2].isEmpty, let bias = initializers[node.inputs[2]]?.floats else {
            return (weightName, nil)
        }
        let biasScales = scales.map { inputScale * $0 }
        let biasCodes = (0..<channels).map { o -> Int32 in
            let q = (Double(bias[o]) / Double(biasScales[o])).rounded()
            return Int32(min(max(q, Double(Int32.min)), Double(Int32.max)))
        }
        let biasName = node.inputs[2] + (sharedBias ? "/" + node.name : "") + "/int32"
        initializers[biasName] = Tensor(shape: Shape([channels]), storage: .int32(biasCodes),
                                        quantization: QuantizationParameters(scales: biasScales,
                                                                             zeroPoints: [Int32](repeating: 0, count: channels),
                                                                             axis: 0))
        return (weightName, biasName)
    }
}
