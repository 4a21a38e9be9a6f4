import Foundation
import ModelKitCore
import ModelKitTraining

/// A network described as data (JSON), so users train new architectures without writing Swift.
///
///     {
///       "input": [28, 28, 1],
///       "layers": [
///         {"type": "conv2d", "filters": 32, "kernel": 3, "activation": "relu"},
///         {"type": "maxpool2d", "pool": 2},
///         {"type": "residual", "layers": [
///           {"type": "conv2d", "filters": 32, "kernel": 3, "padding": "same"},
///           {"type": "batchnorm"}, {"type": "relu"}]},
///         {"type": "flatten"},
///         {"type": "dense", "units": 10}
///       ]
///     }
///
/// The last layer's output is the logits; softmax cross-entropy is the loss and the exported
/// model ends in a Softmax. A "residual" block computes x + f(x) (f must keep x's shape, or
/// give a "shortcut" list of layers applied to x, e.g. a 1×1 convolution).
public struct ModelSpec: Codable, Hashable, Sendable {
    public var input: [Int]
    public var layers: [LayerSpec]

    public init(input: [Int], layers: [LayerSpec]) {
        self.input = input
        self.layers = layers
    }

    public struct LayerSpec: Codable, Hashable, Sendable {
        public var type: String
        public var name: String?
        // conv2d / dense
        public var filters: Int?
        public var units: Int?
        public var kernel: Int?
        public var stride: Int?
        public var dilation: Int?
        public var padding: String?
        public var groups: Int?
        public var activation: String?
        public var useBias: Bool?
        // pooling
        public var pool: Int?
        // dropout / leaky relu / batchnorm
        public var rate: Float?
        public var alpha: Float?
        public var momentum: Float?
        public var epsilon: Float?
        // residual
        public var layers: [LayerSpec]?
        public var shortcut: [LayerSpec]?

        public init(type: String, name: String? = nil, filters: Int? = nil, units: Int? = nil, kernel: Int? = nil,
                    stride: Int? = nil, padding: String? = nil, activation: String? = nil, pool: Int? = nil,
                    rate: Float? = nil, layers: [LayerSpec]? = nil) {
            self.type = type
            self.name = name
            self.filters = filters
            self.units = units
            self.kernel = kernel
            self.stride = stride
            self.padding = padding
            self.activation = activation
            self.pool = pool
            self.rate = rate
            self.layers = layers
        }

        enum CodingKeys: String, CodingKey {
            case type, name, filters, units, kernel, stride, dilation, padding, groups, activation
            case useBias = "use_bias"
            case pool, rate, alpha, momentum, epsilon, layers, shortcut
        }
    }

    /// The project's reference CNN (93,322 parameters for 28×28×1 and 10 classes).
    public static func seedCNN(input: [Int] = [28, 28, 1], classes: Int = 10) -> ModelSpec {
        ModelSpec(input: input, layers: [
            LayerSpec(type: "conv2d", name: "conv1", filters: 32, kernel: 3, activation: "relu"),
            LayerSpec(type: "maxpool2d", name: "pool1", pool: 2),
            LayerSpec(type: "conv2d", name: "conv2", filters: 64, kernel: 3, activation: "relu"),
            LayerSpec(type: "maxpool2d", name: "pool2", pool: 2),
            LayerSpec(type: "conv2d", name: "conv3", filters: 64, kernel: 3, activation: "relu"),
            LayerSpec(type: "flatten", name: "flatten"),
            LayerSpec(type: "dense", name: "dense1", units: 64, activation: "relu"),
            LayerSpec(type: "dense", name: "dense2", units: classes),
        ])
    }

    /// Flatten → Dense(128, relu) → Dense(classes).
    public static func mlp(input: [Int] = [28, 28, 1], classes: Int = 10) -> ModelSpec {
        ModelSpec(input: input, layers: [
            LayerSpec(type: "flatten", name: "flatten"),
            LayerSpec(type: "dense", name: "dense1", units: 128, activation: "relu"),
            LayerSpec(type: "dense", name: "dense2", units: classes),
        ])
    }

    public static let builtInNames = ["seed-cnn", "mlp"]

    public static func builtIn(_ name: String, input: [Int], classes: Int) -> ModelSpec? {
        switch name {
        case "seed-cnn": return seedCNN(input: input, classes: classes)
        case "mlp": return mlp(input: input, classes: classes)
        default: return nil
        }
    }

    /// Parses a JSON spec; errors name the layer at fault.
    public static func parse(json: [UInt8], source: String) throws -> ModelSpec {
        do {
            return try JSONDecoder().decode(ModelSpec.self, from: Data(json))
        } catch let error as DecodingError {
            throw TrainerError.invalidSpec(source: source, reason: describe(error))
        }
    }

    public func jsonText() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(path(context)): \(context.debugDescription)"
        case .keyNotFound(let key, let context):
            return "\(path(context)): missing key '\(key.stringValue)'"
        case .dataCorrupted(let context):
            return "\(path(context).isEmpty ? "" : path(context) + ": ")\(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    /// Builds the network with Glorot-uniform weights and zero biases drawn from `seed`.
    public func build(seed: UInt64) throws -> Network {
        guard input.count == 3 || input.count == 1, input.allSatisfy({ $0 >= 1 }) else {
            throw TrainerError.invalidSpec(source: "spec", reason: "input must be [H, W, C] or [features], got \(input)")
        }
        guard !layers.isEmpty else { throw TrainerError.invalidSpec(source: "spec", reason: "no layers") }
        let network = Network(inputShape: input, rng: RandomGenerator(seed: seed))
        var builder = Builder(network: network)
        var last = -1
        for (index, layer) in layers.enumerated() {
            last = try builder.add(layer, after: last, path: "layers[\(index)]")
        }
        return network
    }

    /// Adds spec layers to a network, naming them uniquely.
    struct Builder {
        let network: Network
        var counters: [String: Int] = [:]

        mutating func name(for spec: LayerSpec) -> String {
            if let name = spec.name { return name }
            counters[spec.type, default: 0] += 1
            return "\(spec.type)\(counters[spec.type]!)"
        }

        func shape(of node: Int) -> [Int] { node == -1 ? network.inputShape : network.shapes[node] }

        /// Adds `spec` reading node `source`; returns the index of its output node.
        mutating func add(_ spec: LayerSpec, after source: Int, path: String) throws -> Int {
            func fail(_ reason: String) -> TrainerError { .invalidSpec(source: path, reason: "\(spec.type): \(reason)") }
            func required(_ value: Int?, _ key: String) throws -> Int {
                guard let value else { throw fail("missing '\(key)'") }
                guard value >= 1 else { throw fail("'\(key)' must be at least 1, got \(value)") }
                return value
            }
            func padding() throws -> Padding {
                switch spec.padding ?? "valid" {
                case "valid": return .valid
                case "same": return .same
                case let other: throw fail("padding must be 'valid' or 'same', got '\(other)'")
                }
            }
            let inputShape = shape(of: source)
            func channels() throws -> Int {
                guard inputShape.count == 3 else { throw fail("needs an [H, W, C] input, got \(inputShape)") }
                return inputShape[2]
            }
            let layerName = name(for: spec)
            let layer: any Layer
            do {
                switch spec.type {
                case "conv2d":
                    let kernel = try required(spec.kernel, "kernel")
                    let stride = spec.stride ?? 1
                    let dilation = spec.dilation ?? 1
                    layer = try Conv2D(name: layerName, inChannels: try channels(), outChannels: try required(spec.filters, "filters"),
                                       kernel: (kernel, kernel), strides: (stride, stride), dilations: (dilation, dilation),
                                       padding: try padding(), groups: spec.groups ?? 1, useBias: spec.useBias ?? true, rng: &network.rng)
                case "dense":
                    guard inputShape.count == 1 else { throw fail("needs a flat input (add a flatten layer), got \(inputShape)") }
                    layer = try Dense(name: layerName, inFeatures: inputShape[0], outFeatures: try required(spec.units, "units"),
                                      useBias: spec.useBias ?? true, rng: &network.rng)
                case "maxpool2d":
                    _ = try channels()
                    let pool = spec.pool ?? 2
                    layer = try MaxPool2D(name: layerName, kernel: (pool, pool), strides: spec.stride.map { ($0, $0) },
                                          padding: try padding())
                case "avgpool2d":
                    _ = try channels()
                    let pool = spec.pool ?? 2
                    layer = try AveragePool2D(name: layerName, kernel: (pool, pool), strides: spec.stride.map { ($0, $0) },
                                              padding: try padding())
                case "globalavgpool":
                    _ = try channels()
                    layer = GlobalAveragePool(name: layerName)
                case "batchnorm":
                    layer = try BatchNormalization(name: layerName, channels: inputShape.last ?? 0,
                                                   momentum: spec.momentum ?? 0.99, epsilon: spec.epsilon ?? 1e-3)
                case "dropout":
                    layer = try Dropout(name: layerName, rate: spec.rate ?? 0.5)
                case "relu": layer = ReLU(name: layerName)
                case "relu6": layer = ReLU6(name: layerName)
                case "leakyrelu": layer = try LeakyReLU(name: layerName, alpha: spec.alpha ?? 0.3)
                case "sigmoid": layer = Sigmoid(name: layerName)
                case "tanh": layer = Tanh(name: layerName)
                case "flatten": layer = Flatten(name: layerName)
                case "residual":
                    return try addResidual(spec, after: source, name: layerName, path: path)
                default:
                    throw fail("unknown layer type (known: conv2d, dense, maxpool2d, avgpool2d, globalavgpool, batchnorm, dropout, relu, relu6, leakyrelu, sigmoid, tanh, flatten, residual)")
                }
                var node = try network.add(layer, inputs: [source])
                if let activation = spec.activation, spec.type == "conv2d" || spec.type == "dense" {
                    node = try addActivation(activation, after: node, base: layerName, path: path)
                }
                return node
            } catch let error as TrainingError {
                throw fail(error.description)
            }
        }

        mutating func addActivation(_ activation: String, after node: Int, base: String, path: String) throws -> Int {
            let name = "\(base)_\(activation)"
            switch activation {
            case "relu": return try network.add(ReLU(name: name), inputs: [node])
            case "relu6": return try network.add(ReLU6(name: name), inputs: [node])
            case "leakyrelu": return try network.add(try LeakyReLU(name: name), inputs: [node])
            case "sigmoid": return try network.add(Sigmoid(name: name), inputs: [node])
            case "tanh": return try network.add(Tanh(name: name), inputs: [node])
            case "linear", "none": return node
            default:
                throw TrainerError.invalidSpec(source: path, reason: "unknown activation '\(activation)' (relu, relu6, leakyrelu, sigmoid, tanh, linear)")
            }
        }

        mutating func addResidual(_ spec: LayerSpec, after source: Int, name: String, path: String) throws -> Int {
            guard let body = spec.layers, !body.isEmpty else {
                throw TrainerError.invalidSpec(source: path, reason: "residual: needs a non-empty 'layers' list")
            }
            var branch = source
            for (index, layer) in body.enumerated() {
                branch = try add(layer, after: branch, path: "\(path).layers[\(index)]")
            }
            var shortcut = source
            for (index, layer) in (spec.shortcut ?? []).enumerated() {
                shortcut = try add(layer, after: shortcut, path: "\(path).shortcut[\(index)]")
            }
            guard shape(of: branch) == shape(of: shortcut) else {
                throw TrainerError.invalidSpec(source: path,
                    reason: "residual: the block gives \(shape(of: branch)) but the shortcut gives \(shape(of: shortcut)); use padding 'same' or a 'shortcut'")
            }
            return try network.add(Add(name: name), inputs: [branch, shortcut])
        }
    }
}
