import ModelKitCore

/// The whole post-training recipe: standard passes, calibration, int8 rewrite.
public struct PostTrainingQuantization: Sendable {
    /// The float graph after the passes: what was calibrated and what per-layer errors compare to.
    public var floatGraph: Graph
    public var ranges: ActivationRanges
    public var options: QuantizationOptions
    public var model: Model
    /// The source model's metadata plus the calibration facts.
    var metadata: ModelMetadata

    /// Optimizes `model`'s graph with the standard passes, calibrates it on `batches` (float,
    /// normalised, shaped like the model input) and quantizes it. Metadata is kept and records the
    /// calibration method and sample count. `progress(done, total)` follows the calibration batches.
    public init(model: Model, batches: [Tensor], options: QuantizationOptions = QuantizationOptions(),
                progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws {
        guard model.kind == .model else {
            throw QuantizationError.invalidOption(reason: "a checkpoint cannot be quantized; export it to a model first")
        }
        let optimized: Graph
        do {
            optimized = try PassPipeline.standard.run(model.graph).graph
        } catch {
            throw QuantizationError.invalidGraph(reason: "\(error)")
        }
        floatGraph = optimized
        ranges = try ActivationRanges.collect(graph: optimized, batches: batches, method: options.method, progress: progress)
        self.options = options
        metadata = model.metadata
        let samples = batches.reduce(0) { $0 + ($1.shape.rank > 0 ? $1.shape[0] : 1) }
        metadata.properties["quantization.method"] = options.method.name
        metadata.properties["quantization.calibration_samples"] = "\(samples)"
        metadata.properties["quantization.weights"] = options.perTensorWeights ? "per-tensor" : "per-channel"
        self.model = Model(kind: .model, graph: optimized, metadata: metadata)  // replaced just below
        self.model = try quantizedModel(floatNodes: options.floatNodes)
    }

    /// The layers (Conv2D, Dense, Add nodes of `floatGraph`) that run in int8 in `model`.
    public var int8Layers: [String] {
        model.graph.nodes.filter { node in
            switch node.operation {
            case .conv2D, .dense, .add: return model.graph.valueQuantization[node.outputs[0]] != nil
            default: return false
            }
        }.map(\.name)
    }

    /// The same calibration quantized again with `floatNodes` kept float (no new calibration run).
    public func keepingFloat(_ floatNodes: Set<String>) throws -> PostTrainingQuantization {
        var result = self
        result.options.floatNodes = floatNodes
        result.model = try quantizedModel(floatNodes: floatNodes)
        return result
    }

    func quantizedModel(floatNodes: Set<String>) throws -> Model {
        var options = self.options
        options.floatNodes = floatNodes
        let graph = try Int8Quantizer(options: options).quantize(floatGraph, ranges: ranges)
        var metadata = self.metadata
        if !floatNodes.isEmpty { metadata.properties["quantization.float_layers"] = floatNodes.sorted().joined(separator: ",") }
        return Model(kind: .model, graph: graph, metadata: metadata)
    }
}
