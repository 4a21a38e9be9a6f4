import ModelKitCore

/// Imports ONNX models (opsets 13...21) into modelkit graphs.
///
/// ONNX activations are NCHW; modelkit's are NHWC. The importer keeps 4-D activations NHWC
/// inside the graph and inserts a Transpose only where ONNX element order matters (Flatten,
/// Reshape, Transpose, Squeeze/Unsqueeze of a 4-D tensor, graph outputs); a Flatten/Reshape whose
/// only reader is a constant-weight Gemm/MatMul needs none, as the Dense weight columns are
/// permuted to NHWC feature order instead. A 4-D graph input is
/// declared NHWC, [N,H,W,C]; the metadata property `onnx.input_layout.<name>` records that the
/// ONNX model took it as NCHW. Convolution weights are stored OHWI and axis attributes of
/// Concat, Softmax, Pad and broadcasting constants are remapped to NHWC.
///
/// Shape arithmetic on constants (Shape, Gather, Slice, Concat, Unsqueeze, Cast, ...) is
/// evaluated at import, so a Shape→Gather→Concat→Reshape chain becomes one Reshape.
public enum ONNXImporter {
    /// Default-domain opset versions the importer accepts.
    public static let supportedOpsets: ClosedRange<Int64> = 13...21

    /// ONNX op types the importer translates (default domain). Ops marked "folded" in the
    /// documentation are accepted only when all their inputs are constants.
    public static let supportedOperators: Set<String> = [
        "Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh",
        "HardSwish", "Softmax", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Transpose",
        "Squeeze", "Unsqueeze", "Add", "Sub", "Mul", "Div", "Concat", "Pad", "Dropout", "Identity", "Constant",
        "Shape", "Gather", "Slice", "Cast", "ConstantOfShape",
    ]

    /// Metadata property set on an imported model: the ONNX layout of graph input `name`.
    public static func inputLayoutProperty(_ name: String) -> String { "onnx.input_layout.\(name)" }

    /// Imports a serialized ONNX ModelProto.
    public static func importModel(bytes: [UInt8], limits: Limits = .default) throws -> Model {
        let proto = try ONNXModelProto.decode(bytes, limits: limits)
        return try importModel(proto, limits: limits)
    }

    /// Reads and imports an `.onnx` file.
    public static func importModel(path: String, limits: Limits = .default) throws -> Model {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.readFile(path, limit: limits.maxPayloadBytes)
        } catch let error as FileError {
            throw ONNXError.file(error)
        }
        return try importModel(bytes: bytes, limits: limits)
    }

    static func importModel(_ proto: ONNXModelProto, limits: Limits) throws -> Model {
        let defaultOpsets = proto.opsets.filter { $0.domain.isEmpty || $0.domain == "ai.onnx" }
        guard let opset = defaultOpsets.map(\.version).max() else { throw ONNXError.missingOpset }
        guard supportedOpsets.contains(opset) else {
            throw ONNXError.unsupportedOpset(version: opset, supported: supportedOpsets)
        }
        try checkOperators(proto.graph)

        let converter = GraphConverter(limits: limits, opset: opset)
        let graph = try converter.convert(proto.graph)

        var properties: [String: String] = [
            "onnx.opset": String(opset),
            "onnx.ir_version": String(proto.irVersion),
        ]
        if !proto.producerName.isEmpty {
            properties["onnx.producer"] = proto.producerVersion.isEmpty
                ? proto.producerName : "\(proto.producerName) \(proto.producerVersion)"
        }
        if !proto.graph.name.isEmpty { properties["onnx.graph_name"] = proto.graph.name }
        for (key, value) in proto.metadata { properties["onnx.metadata.\(key)"] = value }
        for (name, layout) in converter.inputLayouts { properties[inputLayoutProperty(name)] = layout }
        let metadata = ModelMetadata(description: proto.docString, properties: properties)
        return Model(kind: .model, graph: graph, metadata: metadata)
    }

    /// Lists every node whose op the importer does not know, grouped by op type, in one error.
    static func checkOperators(_ graph: ONNXGraphProto) throws {
        var unsupported: [UnsupportedONNXOperator] = []
        var position: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            let isDefaultDomain = node.domain.isEmpty || node.domain == "ai.onnx"
            guard !isDefaultDomain || !supportedOperators.contains(node.opType) else { continue }
            let opType = isDefaultDomain ? node.opType : "\(node.domain):\(node.opType)"
            let name = GraphConverter.displayName(node, index: index)
            if let existing = position[opType] {
                unsupported[existing].nodes.append(name)
            } else {
                position[opType] = unsupported.count
                unsupported.append(UnsupportedONNXOperator(opType: opType, nodes: [name]))
            }
        }
        if !unsupported.isEmpty { throw ONNXError.unsupportedOperators(unsupported) }
    }
}
