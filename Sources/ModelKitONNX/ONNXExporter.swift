import ModelKitCore

/// Writes modelkit models as ONNX (opset 17, IR version 8).
///
/// modelkit activations are NHWC, ONNX's NCHW. The exporter follows each 4-D value and keeps it
/// NCHW in the ONNX graph wherever an op needs that (Conv, pooling, BatchNormalization) and
/// inserts a Transpose only where element order matters: Flatten and Reshape read NHWC order
/// (so features keep modelkit's order), Transpose permutations and Softmax/Concat axes are
/// remapped. Convolution weights are written OIHW; fused activations become separate nodes.
///
/// The ONNX model's interface mirrors what `ONNXImporter` expects: a 4-D graph input is
/// declared NCHW (`[N,C,H,W]`, the modelkit input transposed); every graph output has exactly
/// the modelkit output's shape and element order. Labels and input normalisation travel as
/// `metadata_props` (`modelkit.labels`, `modelkit.normalization`). An int8 model keeps its
/// interface dtypes: float inputs and outputs stay FLOAT, `--int8-io` ones become INT8.
public enum ONNXExporter {
    public static let opsetVersion: Int64 = 17
    public static let irVersion: Int64 = 8
    /// metadata_props keys written by the exporter.
    public static let labelsKey = "modelkit.labels"
    public static let normalizationKey = "modelkit.normalization"

    /// The serialized ONNX ModelProto of `model`: an fp32 model or checkpoint (training state is
    /// not exported) or an int8 model, written in QDQ form (see `ONNXGraphBuilder+QDQ`).
    public static func export(_ model: Model) throws -> [UInt8] {
        for (name, tensor) in model.graph.initializers.sorted(by: { $0.key < $1.key }) where tensor.dtype == .uint8 {
            throw ONNXExportError.unsupportedDType(name: name, dtype: tensor.dtype)
        }
        let analysis: GraphAnalysis
        do {
            analysis = try model.graph.analyze()
        } catch let error as GraphError {
            throw ONNXExportError.invalidGraph(error)
        }
        let builder = ONNXGraphBuilder(graph: model.graph, analysis: analysis)
        try builder.build()
        var metadata: [(key: String, value: String)] = []
        if !model.metadata.labels.isEmpty {
            metadata.append((labelsKey, model.metadata.labels.joined(separator: "\n")))
        }
        if let n = model.metadata.normalization {
            metadata.append((normalizationKey, encodeNormalization(n)))
        }
        let out = ONNXOutModel(
            irVersion: irVersion, opsetVersion: opsetVersion, producerName: "modelkit",
            producerVersion: ModelKitVersion.string, docString: model.metadata.description,
            graphName: model.metadata.properties["onnx.graph_name"] ?? "modelkit",
            nodes: builder.nodes, initializers: builder.initializers, inputs: builder.inputs, outputs: builder.outputs,
            metadata: metadata)
        return try ONNXWriter.pack(out)
    }

    /// "pixelScale;mean0,mean1,...;std0,std1,..." with Float's round-tripping text form.
    public static func encodeNormalization(_ n: InputNormalization) -> String {
        "\(n.pixelScale);\(n.mean.map { "\($0)" }.joined(separator: ","));\(n.std.map { "\($0)" }.joined(separator: ","))"
    }

    /// The inverse of `encodeNormalization`; nil when `text` is not in that form.
    public static func decodeNormalization(_ text: String) -> InputNormalization? {
        let parts = text.split(separator: ";", omittingEmptySubsequences: false)
        guard parts.count == 3, let scale = Float(parts[0]) else { return nil }
        func floats(_ part: Substring) -> [Float]? {
            var result: [Float] = []
            for item in part.split(separator: ",") {
                guard let value = Float(item) else { return nil }
                result.append(value)
            }
            return result
        }
        guard let mean = floats(parts[1]), let std = floats(parts[2]) else { return nil }
        return InputNormalization(pixelScale: scale, mean: mean, std: std)
    }
}
