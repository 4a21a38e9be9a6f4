import ModelKitCore

/// The whole post-training recipe: standard passes, calibration, int8 rewrite.
public struct PostTrainingQuantization: Sendable {
    /// The float graph after the passes: what was calibrated and what per-layer errors compare to.
    public var floatGraph: Graph
    public var ranges: ActivationRanges
    public var model: Model

    /// Optimizes `model`'s graph with the standard passes, calibrates it on `batches` (float,
    /// normalised, shaped like the model input) and quantizes it. Metadata is kept and records the
    /// calibration method and sample count.
    public init(model: Model, batches: [Tensor], options: QuantizationOptions = QuantizationOptions()) throws {
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
        ranges = try ActivationRanges.collect(graph: optimized, batches: batches, method: options.method)
        let graph = try Int8Quantizer(options: options).quantize(optimized, ranges: ranges)
        var metadata = model.metadata
        let samples = batches.reduce(0) { $0 + ($1.shape.rank > 0 ? $1.shape[0] : 1) }
        switch options.method {
        case .minMax: metadata.properties["quantization.method"] = "minmax"
        case .percentile(let p): metadata.properties["quantization.method"] = "percentile(\(p))"
        }
        metadata.properties["quantization.calibration_samples"] = "\(samples)"
        metadata.properties["quantization.weights"] = options.perTensorWeights ? "per-tensor" : "per-channel"
        self.model = Model(kind: .model, graph: graph, metadata: metadata)
    }
}
