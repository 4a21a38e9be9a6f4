import CModelKitSchema
import CProtobufC
import ModelKitCore

/// Packed bytes → protobuf-c message tree → Swift model. Every count read from the file is checked
/// against `limits` before a Swift array is built from it; everything else about the model is
/// checked afterwards by `ModelValidator`.
struct ProtoDecoder {
    let limits: Limits

    /// Unpacks and maps `payload`. The payload array is consumed: protobuf-c copies what it keeps,
    /// so the payload can be released before the Swift arrays are built, lowering peak memory.
    static func decode(_ payload: consuming [UInt8], limits: Limits) throws -> Model {
        let unpacked = try UnpackedModelFile(payload)
        payload = []
        return try ProtoDecoder(limits: limits).model(unpacked.file.pointee)
    }

    // MARK: Helpers

    /// The elements of a repeated scalar field.
    func items<T>(_ pointer: UnsafeMutablePointer<T>?, _ count: Int) throws -> UnsafeBufferPointer<T> {
        guard count > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
        guard let pointer else { throw FormatError.invalidProtobuf(size: 0) }
        return UnsafeBufferPointer(start: pointer, count: count)
    }

    /// The elements of a repeated message field.
    func messages<T>(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ count: Int) throws -> [T] {
        try items(pointer, count).map { element in
            guard let element else { throw FormatError.invalidProtobuf(size: 0) }
            return element.pointee
        }
    }

    func text(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        return String(cString: pointer)
    }

    func texts(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ count: Int) throws -> [String] {
        try items(pointer, count).map { text($0) }
    }

    func int(_ value: Int64) -> Int {
        // Int is 64 bits on every platform modelkit supports; clamp rather than trap elsewhere.
        Int(exactly: value) ?? (value < 0 ? Int.min : Int.max)
    }

    func dataType(_ value: Modelkit__V1__DataType, label: String) throws -> DType {
        switch value {
        case MODELKIT__V1__DATA_TYPE__DATA_TYPE_FLOAT32: return .float32
        case MODELKIT__V1__DATA_TYPE__DATA_TYPE_INT8: return .int8
        case MODELKIT__V1__DATA_TYPE__DATA_TYPE_UINT8: return .uint8
        case MODELKIT__V1__DATA_TYPE__DATA_TYPE_INT32: return .int32
        default: throw FormatError.invalidTensor(tensor: label, reason: "unknown dtype \(value.rawValue)")
        }
    }

    func dims(_ pointer: UnsafeMutablePointer<Int64>?, _ count: Int, label: String) throws -> [Int64] {
        guard count <= limits.maxRank else {
            throw FormatError.invalidTensor(tensor: label, reason: "rank \(count) exceeds the limit of \(limits.maxRank)")
        }
        return Array(try items(pointer, count))
    }

    func quantization(_ pointer: UnsafeMutablePointer<Modelkit__V1__Quantization>?, label: String)
        throws -> QuantizationParameters? {
        guard let q = pointer?.pointee else { return nil }
        guard q.n_scales == q.n_zero_points else {
            throw FormatError.invalidQuantization(tensor: label, reason: "\(q.n_scales) scales but \(q.n_zero_points) zero points")
        }
        guard q.n_scales <= limits.maxTensorElements else {
            throw FormatError.invalidQuantization(tensor: label, reason: "\(q.n_scales) scales exceed the element limit")
        }
        let axis: Int? = q.axis_presence_case == MODELKIT__V1__QUANTIZATION__AXIS_PRESENCE_AXIS ? int(q.axis) : nil
        return QuantizationParameters(scales: Array(try items(q.scales, q.n_scales)),
                                      zeroPoints: Array(try items(q.zero_points, q.n_zero_points)), axis: axis)
    }

    /// A constant tensor, checked completely: dtype, rank, dims, element count against the limit
    /// (overflow-safe), and data length, before its elements are copied.
    func tensor(_ t: Modelkit__V1__Tensor, role: String) throws -> (String, Tensor) {
        let name = text(t.name)
        let label = "\(role) '\(name)'"
        guard !name.isEmpty else { throw FormatError.invalidTensor(tensor: role, reason: "tensor has an empty name") }
        let dtype = try dataType(t.dtype, label: label)
        let rawDims = try dims(t.dims, t.n_dims, label: label)
        var count = 1
        for (axis, dim) in rawDims.enumerated() {
            guard dim >= 0 else { throw FormatError.invalidTensor(tensor: label, reason: "dimension \(axis) is \(dim)") }
            let (product, overflow) = count.multipliedReportingOverflow(by: int(dim))
            guard !overflow, product <= limits.maxTensorElements else {
                throw FormatError.tensorTooLarge(tensor: label, dims: rawDims, limit: limits.maxTensorElements)
            }
            count = product
        }
        guard count <= limits.maxTensorElements else {
            throw FormatError.tensorTooLarge(tensor: label, dims: rawDims, limit: limits.maxTensorElements)
        }
        let (expected, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, t.data.len == expected else {
            throw FormatError.dataLengthMismatch(tensor: label, expected: expected, actual: t.data.len)
        }
        let data = UnsafeRawBufferPointer(start: t.data.data, count: expected > 0 && t.data.data != nil ? expected : 0)
        guard data.count == expected else { throw FormatError.dataLengthMismatch(tensor: label, expected: expected, actual: 0) }
        let storage = TensorData.read(data, dtype: dtype, count: count)
        let q = try quantization(t.quantization, label: label)
        return (name, Tensor(shape: Shape(rawDims.map(int)), storage: storage, quantization: q))
    }

    func valueInfo(_ v: Modelkit__V1__ValueInfo) throws -> ValueInfo {
        let name = text(v.name)
        let label = "graph input '\(name)'"
        let dtype = try dataType(v.dtype, label: label)
        let rawDims = try dims(v.dims, v.n_dims, label: label)
        return ValueInfo(name: name, dtype: dtype, shape: Shape(rawDims.map(int)),
                         quantization: try quantization(v.quantization, label: label))
    }

    func padding(_ pointer: UnsafeMutablePointer<Modelkit__V1__Padding>?, node: String) throws -> Padding {
        guard let p = pointer?.pointee else { return .valid }
        switch p.mode {
        case MODELKIT__V1__PADDING_MODE__PADDING_MODE_VALID: return .valid
        case MODELKIT__V1__PADDING_MODE__PADDING_MODE_SAME: return .same
        case MODELKIT__V1__PADDING_MODE__PADDING_MODE_EXPLICIT:
            return .explicit(top: int(p.top), left: int(p.left), bottom: int(p.bottom), right: int(p.right))
        default:
            throw FormatError.invalidNode(node: node, reason: "unknown padding mode \(p.mode.rawValue)")
        }
    }

    func activation(_ pointer: UnsafeMutablePointer<Modelkit__V1__Activation>?, node: String) throws -> FusedActivation {
        guard let a = pointer?.pointee else { return .none }
        switch a.kind {
        case MODELKIT__V1__ACTIVATION_KIND__ACTIVATION_KIND_NONE: return .none
        case MODELKIT__V1__ACTIVATION_KIND__ACTIVATION_KIND_RELU: return .relu
        case MODELKIT__V1__ACTIVATION_KIND__ACTIVATION_KIND_CLIP: return .clip(min: a.min, max: a.max)
        case MODELKIT__V1__ACTIVATION_KIND__ACTIVATION_KIND_LEAKY_RELU: return .leakyRelu(alpha: a.alpha)
        default:
            throw FormatError.invalidNode(node: node, reason: "unknown fused activation \(a.kind.rawValue)")
        }
    }

    func pool(_ pointer: UnsafeMutablePointer<Modelkit__V1__Pool2D>?, node: String) throws -> Pool2DAttributes {
        guard let p = pointer?.pointee else { throw FormatError.unknownOp(node: node) }
        var a = Pool2DAttributes(kernel: (int(p.kernel_h), int(p.kernel_w)), strides: (int(p.stride_h), int(p.stride_w)))
        a.padding = try padding(p.padding, node: node)
        a.countIncludePad = p.count_include_pad != 0
        return a
    }

    /// An int64 list attribute, bounded before it becomes an array.
    func intList(_ pointer: UnsafeMutablePointer<Int64>?, _ count: Int, bound: Int, node: String, what: String) throws -> [Int] {
        guard count <= bound else {
            throw FormatError.invalidNode(node: node, reason: "\(what) has \(count) values, more than \(bound)")
        }
        return try items(pointer, count).map(int)
    }

    func operation(_ n: Modelkit__V1__Node, node: String) throws -> Operation {
        // Every oneof member is a message pointer; a set case with a NULL pointer cannot come out
        // of protobuf-c, but is rejected like an unknown op rather than trusted.
        func present<T>(_ pointer: UnsafeMutablePointer<T>?) throws -> T {
            guard let pointer else { throw FormatError.unknownOp(node: node) }
            return pointer.pointee
        }
        switch n.op_case {
        case MODELKIT__V1__NODE__OP_CONV2D:
            let c = try present(n.conv2d)
            return .conv2D(Conv2DAttributes(strides: (int(c.stride_h), int(c.stride_w)),
                                            dilations: (int(c.dilation_h), int(c.dilation_w)),
                                            padding: try padding(c.padding, node: node), groups: int(c.groups),
                                            activation: try activation(c.activation, node: node)))
        case MODELKIT__V1__NODE__OP_DENSE:
            return .dense(activation: try activation(try present(n.dense).activation, node: node))
        case MODELKIT__V1__NODE__OP_MAX_POOL2D:
            return .maxPool2D(try pool(n.max_pool2d, node: node))
        case MODELKIT__V1__NODE__OP_AVERAGE_POOL2D:
            return .averagePool2D(try pool(n.average_pool2d, node: node))
        case MODELKIT__V1__NODE__OP_GLOBAL_AVERAGE_POOL:
            _ = try present(n.global_average_pool)
            return .globalAveragePool
        case MODELKIT__V1__NODE__OP_RELU:
            _ = try present(n.relu)
            return .relu
        case MODELKIT__V1__NODE__OP_CLIP:
            let c = try present(n.clip)
            return .clip(min: c.min, max: c.max)
        case MODELKIT__V1__NODE__OP_LEAKY_RELU:
            return .leakyRelu(alpha: try present(n.leaky_relu).alpha)
        case MODELKIT__V1__NODE__OP_SIGMOID:
            _ = try present(n.sigmoid)
            return .sigmoid
        case MODELKIT__V1__NODE__OP_TANH:
            _ = try present(n.tanh)
            return .tanh
        case MODELKIT__V1__NODE__OP_HARD_SWISH:
            _ = try present(n.hard_swish)
            return .hardSwish
        case MODELKIT__V1__NODE__OP_SOFTMAX:
            return .softmax(axis: int(try present(n.softmax).axis))
        case MODELKIT__V1__NODE__OP_FLATTEN:
            return .flatten(axis: int(try present(n.flatten).axis))
        case MODELKIT__V1__NODE__OP_RESHAPE:
            let r = try present(n.reshape)
            return .reshape(shape: try intList(r.shape, r.n_shape, bound: limits.maxRank, node: node, what: "reshape target"))
        case MODELKIT__V1__NODE__OP_TRANSPOSE:
            let t = try present(n.transpose)
            return .transpose(permutation: try intList(t.permutation, t.n_permutation, bound: limits.maxRank,
                                                       node: node, what: "permutation"))
        case MODELKIT__V1__NODE__OP_ADD:
            return .add(activation: try activation(try present(n.add).activation, node: node))
        case MODELKIT__V1__NODE__OP_MUL:
            _ = try present(n.mul)
            return .mul
        case MODELKIT__V1__NODE__OP_CONCAT:
            return .concat(axis: int(try present(n.concat).axis))
        case MODELKIT__V1__NODE__OP_PAD:
            let p = try present(n.pad)
            let bound = limits.maxRank > Int.max / 2 ? Int.max : 2 * limits.maxRank
            return .pad(pads: try intList(p.pads, p.n_pads, bound: bound, node: node, what: "pads"), value: p.value)
        case MODELKIT__V1__NODE__OP_BATCH_NORMALIZATION:
            return .batchNormalization(epsilon: try present(n.batch_normalization).epsilon)
        case MODELKIT__V1__NODE__OP_DROPOUT:
            return .dropout(rate: try present(n.dropout).rate)
        case MODELKIT__V1__NODE__OP_QUANTIZE_LINEAR:
            _ = try present(n.quantize_linear)
            return .quantizeLinear
        case MODELKIT__V1__NODE__OP_DEQUANTIZE_LINEAR:
            _ = try present(n.dequantize_linear)
            return .dequantizeLinear
        default:
            throw FormatError.unknownOp(node: node)
        }
    }

    func node(_ n: Modelkit__V1__Node, index: Int) throws -> Node {
        let name = text(n.name)
        let label = name.isEmpty ? "#\(index)" : name
        return Node(name: name, operation: try operation(n, node: label),
                    inputs: try texts(n.inputs, n.n_inputs), outputs: try texts(n.outputs, n.n_outputs))
    }

    func graph(_ g: Modelkit__V1__Graph) throws -> Graph {
        guard g.n_nodes <= limits.maxNodes else {
            throw FormatError.invalidGraph(.tooManyNodes(count: g.n_nodes, limit: limits.maxNodes))
        }
        let inputs = try messages(g.inputs, g.n_inputs).map(valueInfo)
        let nodes = try messages(g.nodes, g.n_nodes).enumerated().map { try node($1, index: $0) }
        var initializers: [String: Tensor] = [:]
        for t in try messages(g.initializers, g.n_initializers) {
            let (name, value) = try tensor(t, role: "initializer")
            guard initializers.updateValue(value, forKey: name) == nil else {
                throw FormatError.duplicateName(what: "initializer", name: name)
            }
        }
        guard g.n_value_quantization <= limits.maxNodes else {
            throw FormatError.invalidGraph(.tooManyNodes(count: g.n_value_quantization, limit: limits.maxNodes))
        }
        var valueQuantization: [String: QuantizationParameters] = [:]
        for v in try messages(g.value_quantization, g.n_value_quantization) {
            let name = text(v.name)
            guard let parameters = try quantization(v.quantization, label: "value '\(name)'") else {
                throw FormatError.invalidQuantization(tensor: "value '\(name)'", reason: "no parameters")
            }
            guard valueQuantization.updateValue(parameters, forKey: name) == nil else {
                throw FormatError.duplicateName(what: "quantized value", name: name)
            }
        }
        return Graph(inputs: inputs, outputs: try texts(g.outputs, g.n_outputs), nodes: nodes, initializers: initializers,
                     valueQuantization: valueQuantization)
    }

    func stringMap(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<Modelkit__V1__StringEntry>?>?, _ count: Int,
                   what: String) throws -> [String: String] {
        var map: [String: String] = [:]
        for entry in try messages(pointer, count) {
            let key = text(entry.key)
            guard map.updateValue(text(entry.value), forKey: key) == nil else {
                throw FormatError.duplicateName(what: what, name: key)
            }
        }
        return map
    }

    func metadata(_ pointer: UnsafeMutablePointer<Modelkit__V1__Metadata>?) throws -> ModelMetadata {
        guard let m = pointer?.pointee else { return ModelMetadata(producerName: "", producerVersion: "") }
        var normalization: InputNormalization?
        if let n = m.normalization?.pointee {
            normalization = InputNormalization(pixelScale: n.pixel_scale, mean: Array(try items(n.mean, n.n_mean)),
                                               std: Array(try items(n.std, n.n_std)))
        }
        return ModelMetadata(producerName: text(m.producer_name), producerVersion: text(m.producer_version),
                             createdAt: m.created_at, description: text(m.description),
                             labels: try texts(m.labels, m.n_labels), normalization: normalization,
                             properties: try stringMap(m.properties, m.n_properties, what: "metadata property"))
    }

    func trainingState(_ t: Modelkit__V1__TrainingState) throws -> TrainingState {
        guard let o = t.optimizer?.pointee else {
            throw FormatError.invalidTrainingState(reason: "the optimizer state is missing")
        }
        var hyperparameters: [String: Double] = [:]
        for entry in try messages(o.hyperparameters, o.n_hyperparameters) {
            let key = text(entry.key)
            guard hyperparameters.updateValue(entry.value, forKey: key) == nil else {
                throw FormatError.duplicateName(what: "optimizer hyperparameter", name: key)
            }
        }
        var slots: [String: Tensor] = [:]
        for slot in try messages(o.slots, o.n_slots) {
            let (name, value) = try tensor(slot, role: "optimizer slot")
            guard slots.updateValue(value, forKey: name) == nil else {
                throw FormatError.duplicateName(what: "optimizer slot", name: name)
            }
        }
        let metrics = try messages(t.metrics_history, t.n_metrics_history).map { e in
            EpochMetrics(epoch: int(e.epoch), trainLoss: e.train_loss, trainAccuracy: e.train_accuracy,
                         validationLoss: e.validation_loss_presence_case
                            == MODELKIT__V1__EPOCH_METRICS__VALIDATION_LOSS_PRESENCE_VALIDATION_LOSS ? e.validation_loss : nil,
                         validationAccuracy: e.validation_accuracy_presence_case
                            == MODELKIT__V1__EPOCH_METRICS__VALIDATION_ACCURACY_PRESENCE_VALIDATION_ACCURACY
                            ? e.validation_accuracy : nil,
                         seconds: e.seconds)
        }
        let optimizer = OptimizerState(name: text(o.name), hyperparameters: hyperparameters, step: o.step, slots: slots)
        return TrainingState(epoch: int(t.epoch), step: t.step, stepInEpoch: t.step_in_epoch, optimizer: optimizer,
                             rngState: Array(try items(t.rng_state, t.n_rng_state)), metricsHistory: metrics,
                             configuration: try stringMap(t.configuration, t.n_configuration, what: "training configuration key"))
    }

    func model(_ file: Modelkit__V1__ModelFile) throws -> Model {
        let kind: ModelKind
        switch file.kind {
        case MODELKIT__V1__KIND__KIND_MODEL: kind = .model
        case MODELKIT__V1__KIND__KIND_CHECKPOINT: kind = .checkpoint
        case MODELKIT__V1__KIND__KIND_UNSPECIFIED: throw FormatError.invalidKind(reason: "ModelFile.kind is not set")
        default: throw FormatError.invalidKind(reason: "unknown ModelFile.kind \(file.kind.rawValue)")
        }
        guard let graph = file.graph?.pointee else {
            throw FormatError.invalidGraph(.emptyGraph)
        }
        return Model(kind: kind, graph: try self.graph(graph), metadata: try metadata(file.metadata),
                     training: try file.training.map { try trainingState($0.pointee) })
    }
}

/// The protobuf-c message tree of a payload, in an `UnpackArena` and freed with this value.
/// protobuf-c copies every field it keeps, so the payload's buffer may be released as soon as
/// this exists.
struct UnpackedModelFile: ~Copyable {
    let file: UnsafeMutablePointer<Modelkit__V1__ModelFile>
    let arena: UnpackArena

    /// The tree of `payload` in `arena`, which this value keeps.
    init(_ payload: UnsafeRawBufferPointer, arena: UnpackArena) throws {
        file = try UnpackedModelFile.unpack(payload, allocator: arena.allocator)
        self.arena = arena
    }

    init(_ payload: borrowing [UInt8]) throws {
        let arena = try UnpackArena(payloadSize: payload.count)
        let allocator = arena.allocator
        file = try payload.withUnsafeBytes { try UnpackedModelFile.unpack($0, allocator: allocator) }
        self.arena = arena
    }

    private static func unpack(_ payload: UnsafeRawBufferPointer, allocator: UnsafeMutablePointer<ProtobufCAllocator>)
        throws -> UnsafeMutablePointer<Modelkit__V1__ModelFile> {
        guard let base = payload.baseAddress,
              let file = modelkit__v1__model_file__unpack(allocator, payload.count, base.assumingMemoryBound(to: UInt8.self)) else {
            throw FormatError.invalidProtobuf(size: payload.count)
        }
        return file
    }

    deinit { modelkit__v1__model_file__free_unpacked(file, arena.allocator) }
}
