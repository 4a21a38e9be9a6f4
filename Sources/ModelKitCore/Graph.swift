/// A named, typed value that flows between nodes (graph inputs and outputs).
public struct ValueInfo: Hashable, Sendable {
    public var name: String
    public var dtype: DType
    public var shape: Shape
    /// Set for int8/uint8 activations of quantized models.
    public var quantization: QuantizationParameters?

    public init(name: String, dtype: DType = .float32, shape: Shape, quantization: QuantizationParameters? = nil) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.quantization = quantization
    }
}

public struct Node: Hashable, Sendable {
    public var name: String
    public var operation: Operation
    /// Value names: graph inputs, initializers, or outputs of other nodes. An empty string
    /// marks an omitted optional input (ONNX convention).
    public var inputs: [String]
    public var outputs: [String]

    public init(name: String, operation: Operation, inputs: [String], outputs: [String]) {
        self.name = name
        self.operation = operation
        self.inputs = inputs
        self.outputs = outputs
    }
}

/// A dataflow graph: the unit the format stores, the passes rewrite, and the runtime plans.
public struct Graph: Hashable, Sendable {
    public var inputs: [ValueInfo]
    public var outputs: [String]
    public var nodes: [Node]
    public var initializers: [String: Tensor]
    /// Quantization parameters of int8 node outputs (per tensor), keyed by value name. Graph
    /// inputs carry theirs in `ValueInfo.quantization`, initializers in `Tensor.quantization`.
    public var valueQuantization: [String: QuantizationParameters]

    public init(inputs: [ValueInfo], outputs: [String], nodes: [Node], initializers: [String: Tensor] = [:],
                valueQuantization: [String: QuantizationParameters] = [:]) {
        self.inputs = inputs
        self.outputs = outputs
        self.nodes = nodes
        self.initializers = initializers
        self.valueQuantization = valueQuantization
    }

    /// Number of stored parameters (initializer elements).
    public var parameterCount: Int {
        initializers.values.reduce(0) { $0 + $1.elementCount }
    }
}

/// Descriptive data carried alongside a graph.
public struct ModelMetadata: Hashable, Sendable {
    public var producerName: String
    public var producerVersion: String
    /// Seconds since the Unix epoch.
    public var createdAt: Int64
    public var description: String
    /// Class names, indexed by output position.
    public var labels: [String]
    /// Per-channel input normalisation applied by readers before inference:
    /// x' = (x * inputScale - mean[c]) / std[c], where raw 8-bit pixels are multiplied by `inputScale`.
    public var normalization: InputNormalization?
    /// Free-form key/value pairs.
    public var properties: [String: String]

    public init(producerName: String = "modelkit", producerVersion: String = ModelKitVersion.string,
                createdAt: Int64 = 0, description: String = "", labels: [String] = [],
                normalization: InputNormalization? = nil, properties: [String: String] = [:]) {
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.createdAt = createdAt
        self.description = description
        self.labels = labels
        self.normalization = normalization
        self.properties = properties
    }
}

public struct InputNormalization: Hashable, Sendable {
    /// Multiplier applied to raw 8-bit pixel values first (1/255 maps them to [0, 1]).
    public var pixelScale: Float
    public var mean: [Float]
    public var std: [Float]

    public init(pixelScale: Float = 1.0 / 255.0, mean: [Float] = [0], std: [Float] = [1]) {
        self.pixelScale = pixelScale
        self.mean = mean
        self.std = std
    }

    /// Normalised value of channel `c` for a raw pixel.
    @inline(__always)
    public func apply(_ pixel: Float, channel: Int) -> Float {
        let m = mean.isEmpty ? 0 : mean[channel % mean.count]
        let s = std.isEmpty ? 1 : std[channel % std.count]
        return (pixel * pixelScale - m) / s
    }
}

public enum ModelKitVersion {
    public static let string = "0.1.0"
}
