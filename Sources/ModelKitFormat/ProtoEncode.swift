import CModelKitSchema
import ModelKitCore
import ModelKitProtobuf

/// Swift model → protobuf-c message tree → packed bytes. Maps are written sorted by key so the
/// same model always gives the same bytes.
enum ProtoEncoder {
    static func encode(_ model: Model) throws -> [UInt8] {
        let arena = ProtoArena { FormatError.encodingFailed(reason: $0) }
        let file = try arena.message(modelkit__v1__model_file__init)
        file.pointee.kind = model.kind == .model ? MODELKIT__V1__KIND__KIND_MODEL : MODELKIT__V1__KIND__KIND_CHECKPOINT
        file.pointee.graph = try graph(model.graph, arena)
        file.pointee.metadata = try metadata(model.metadata, arena)
        if let training = model.training {
            file.pointee.training = try trainingState(training, arena)
        }
        let size = modelkit__v1__model_file__get_packed_size(file)
        let packed = [UInt8](unsafeUninitializedCapacity: max(size, 1)) { buffer, initialized in
            initialized = size > 0 ? modelkit__v1__model_file__pack(file, buffer.baseAddress) : 0
        }
        guard packed.count == size else {
            throw FormatError.encodingFailed(reason: "protobuf-c packed \(packed.count) bytes, expected \(size)")
        }
        return packed
    }

    static func dataType(_ dtype: DType) -> Modelkit__V1__DataType {
        switch dtype {
        case .float32: return MODELKIT__V1__DATA_TYPE__DATA_TYPE_FLOAT32
        case .int8: return MODELKIT__V1__DATA_TYPE__DATA_TYPE_INT8
        case .uint8: return MODELKIT__V1__DATA_TYPE__DATA_TYPE_UINT8
        case .int32: return MODELKIT__V1__DATA_TYPE__DATA_TYPE_INT32
        }
    }

    static func int64s(_ values: [Int], _ arena: ProtoArena) throws -> (Int, UnsafeMutablePointer<Int64>?) {
        (values.count, try arena.array(values.map { Int64($0) }))
    }

    static func quantization(_ q: QuantizationParameters?, _ arena: ProtoArena)
        throws -> UnsafeMutablePointer<Modelkit__V1__Quantization>? {
        guard let q else { return nil }
        let m = try arena.message(modelkit__v1__quantization__init)
        m.pointee.n_scales = q.scales.count
        m.pointee.scales = try arena.array(q.scales)
        m.pointee.n_zero_points = q.zeroPoints.count
        m.pointee.zero_points = try arena.array(q.zeroPoints)
        if let axis = q.axis {
            m.pointee.axis_presence_case = MODELKIT__V1__QUANTIZATION__AXIS_PRESENCE_AXIS
            m.pointee.axis = Int64(axis)
        }
        return m
    }

    static func tensor(_ name: String, _ t: Tensor, _ arena: ProtoArena) throws -> UnsafeMutablePointer<Modelkit__V1__Tensor> {
        let m = try arena.message(modelkit__v1__tensor__init)
        m.pointee.name = try arena.string(name)
        m.pointee.dtype = dataType(t.dtype)
        (m.pointee.n_dims, m.pointee.dims) = try int64s(t.shape.dims, arena)
        let byteCount = t.byteCount
        m.pointee.data.len = byteCount
        m.pointee.data.data = try arena.bytes(count: byteCount) { TensorData.write(t.storage, into: $0) }
        m.pointee.quantization = try quantization(t.quantization, arena)
        return m
    }

    static func valueInfo(_ v: ValueInfo, _ arena: ProtoArena) throws -> UnsafeMutablePointer<Modelkit__V1__ValueInfo> {
        let m = try arena.message(modelkit__v1__value_info__init)
        m.pointee.name = try arena.string(v.name)
        m.pointee.dtype = dataType(v.dtype)
        (m.pointee.n_dims, m.pointee.dims) = try int64s(v.shape.dims, arena)
        m.pointee.quantization = try quantization(v.quantization, arena)
        return m
    }

    static func padding(_ p: Padding, _ arena: ProtoArena) throws -> UnsafeMutablePointer<Modelkit__V1__Padding> {
        let m = try arena.message(modelkit__v1__padding__init)
        switch p {
        case .valid:
            m.pointee.mode = MODELKIT__V1__PADDING_MODE__PADDING_MODE_VALID
        case .same:
            m.pointee.mode = MODELKIT__V1__PADDING_MODE__PADDING_MODE_SAME
        case .explicit(let top, let left, let bottom, let right):
            m.pointee.mode = MODELKIT__V1__PADDING_MODE__PADDING_MODE_EXPLICIT
            m.pointee.top = Int64(top)
            m.pointee.left = Int64(left)
            m.pointee.bottom = Int64(bottom)
            m.pointee.right = Int64(right)
        }
        return m
    }

    static func activation(_ a: FusedActivation, _ arena: ProtoArena) throws -> UnsafeMutablePointer<Modelkit__V1__Activation>? {
        if a == .none { return nil }
        let m = try arena.message(modelkit__v1__activation__init)
        switch a {
        case .none:
            break
        case .relu:
            m.pointee.kind = MODELKIT__V1__ACTIVATION_KIND__ACTIVATION_KIND_RELU
        case .clip(let lo, let hi):
            m.pointee.kind = MODELKIT__V1__ACTIVATION_KIND__ACTIVATION_KIND_CLIP
            m.pointee.min = lo
            m.pointee.max = hi
        case .leakyRelu(let alpha):
            m.pointee.kind = MODELKIT__V1__ACTIVATION_KIND__ACTIVATION_KIND_LEAKY_RELU
            m.pointee.alpha = alpha
        }
        return m
    }

    static func noAttributes(_ arena: ProtoArena) throws -> UnsafeMutablePointer<Modelkit__V1__NoAttributes> {
        try arena.message(modelkit__v1__no_attributes__init)
    }

    static func axis(_ value: Int, _ arena: ProtoArena) throws -> UnsafeMutablePointer<Modelkit__V1__Axis> {
        let m = try arena.message(modelkit__v1__axis__init)
        m.pointee.axis = Int64(value)
        return m
    }

    static func pool(_ a: Pool2DAttributes, _ arena: ProtoArena) throws -> UnsafeMutablePointer<Modelkit__V1__Pool2D> {
        let m = try arena.message(modelkit__v1__pool2_d__init)
        m.pointee.kernel_h = Int64(a.kernelH)
        m.pointee.kernel_w = Int64(a.kernelW)
        m.pointee.stride_h = Int64(a.strideH)
        m.pointee.stride_w = Int64(a.strideW)
        m.pointee.padding = try padding(a.padding, arena)
        m.pointee.count_include_pad = a.countIncludePad ? 1 : 0
        return m
    }

    static func node(_ n: Node, _ arena: ProtoArena) throws -> UnsafeMutablePointer<Modelkit__V1__Node> {
        let m = try arena.message(modelkit__v1__node__init)
        m.pointee.name = try arena.string(n.name)
        m.pointee.n_inputs = n.inputs.count
        m.pointee.inputs = try arena.strings(n.inputs)
        m.pointee.n_outputs = n.outputs.count
        m.pointee.outputs = try arena.strings(n.outputs)
        switch n.operation {
        case .conv2D(let a):
            let c = try arena.message(modelkit__v1__conv2_d__init)
            c.pointee.stride_h = Int64(a.strideH)
            c.pointee.stride_w = Int64(a.strideW)
            c.pointee.dilation_h = Int64(a.dilationH)
            c.pointee.dilation_w = Int64(a.dilationW)
            c.pointee.padding = try padding(a.padding, arena)
            c.pointee.groups = Int64(a.groups)
            c.pointee.activation = try activation(a.activation, arena)
            m.pointee.op_case = MODELKIT__V1__NODE__OP_CONV2D
            m.pointee.conv2d = c
        case .dense(let a):
            let d = try arena.message(modelkit__v1__dense__init)
            d.pointee.activation = try activation(a, arena)
            m.pointee.op_case = MODELKIT__V1__NODE__OP_DENSE
            m.pointee.dense = d
        case .maxPool2D(let a):
            m.pointee.op_case = MODELKIT__V1__NODE__OP_MAX_POOL2D
            m.pointee.max_pool2d = try pool(a, arena)
        case .averagePool2D(let a):
            m.pointee.op_case = MODELKIT__V1__NODE__OP_AVERAGE_POOL2D
            m.pointee.average_pool2d = try pool(a, arena)
        case .globalAveragePool:
            m.pointee.op_case = MODELKIT__V1__NODE__OP_GLOBAL_AVERAGE_POOL
            m.pointee.global_average_pool = try noAttributes(arena)
        case .relu:
            m.pointee.op_case = MODELKIT__V1__NODE__OP_RELU
            m.pointee.relu = try noAttributes(arena)
        case .clip(let lo, let hi):
            let c = try arena.message(modelkit__v1__clip__init)
            c.pointee.min = lo
            c.pointee.max = hi
            m.pointee.op_case = MODELKIT__V1__NODE__OP_CLIP
            m.pointee.clip = c
        case .leakyRelu(let alpha):
            let l = try arena.message(modelkit__v1__leaky_relu__init)
            l.pointee.alpha = alpha
            m.pointee.op_case = MODELKIT__V1__NODE__OP_LEAKY_RELU
            m.pointee.leaky_relu = l
        case .sigmoid:
            m.pointee.op_case = MODELKIT__V1__NODE__OP_SIGMOID
            m.pointee.sigmoid = try noAttributes(arena)
        case .tanh:
            m.pointee.op_case = MODELKIT__V1__NODE__OP_TANH
            m.pointee.tanh = try noAttributes(arena)
        case .hardSwish:
            m.pointee.op_case = MODELKIT__V1__NODE__OP_HARD_SWISH
            m.pointee.hard_swish = try noAttributes(arena)
        case .softmax(let a):
            m.pointee.op_case = MODELKIT__V1__NODE__OP_SOFTMAX
            m.pointee.softmax = try axis(a, arena)
        case .flatten(let a):
            m.pointee.op_case = MODELKIT__V1__NODE__OP_FLATTEN
            m.pointee.flatten = try axis(a, arena)
        case .reshape(let shape):
            let r = try arena.message(modelkit__v1__reshape__init)
            (r.pointee.n_shape, r.pointee.shape) = try int64s(shape, arena)
            m.pointee.op_case = MODELKIT__V1__NODE__OP_RESHAPE
            m.pointee.reshape = r
        case .transpose(let permutation):
            let t = try arena.message(modelkit__v1__transpose__init)
            (t.pointee.n_permutation, t.pointee.permutation) = try int64s(permutation, arena)
            m.pointee.op_case = MODELKIT__V1__NODE__OP_TRANSPOSE
            m.pointee.transpose = t
        case .add(let a):
            let d = try arena.message(modelkit__v1__add__init)
            d.pointee.activation = try activation(a, arena)
            m.pointee.op_case = MODELKIT__V1__NODE__OP_ADD
            m.pointee.add = d
        case .mul:
            m.pointee.op_case = MODELKIT__V1__NODE__OP_MUL
            m.pointee.mul = try noAttributes(arena)
        case .concat(let a):
            m.pointee.op_case = MODELKIT__V1__NODE__OP_CONCAT
            m.pointee.concat = try axis(a, arena)
        case .pad(let pads, let value):
            let p = try arena.message(modelkit__v1__pad__init)
            (p.pointee.n_pads, p.pointee.pads) = try int64s(pads, arena)
            p.pointee.value = value
            m.pointee.op_case = MODELKIT__V1__NODE__OP_PAD
            m.pointee.pad = p
        case .batchNormalization(let epsilon):
            let b = try arena.message(modelkit__v1__batch_normalization__init)
            b.pointee.epsilon = epsilon
            m.pointee.op_case = MODELKIT__V1__NODE__OP_BATCH_NORMALIZATION
            m.pointee.batch_normalization = b
        case .dropout(let rate):
            let d = try arena.message(modelkit__v1__dropout__init)
            d.pointee.rate = rate
            m.pointee.op_case = MODELKIT__V1__NODE__OP_DROPOUT
            m.pointee.dropout = d
        case .quantizeLinear:
            m.pointee.op_case = MODELKIT__V1__NODE__OP_QUANTIZE_LINEAR
            m.pointee.quantize_linear = try noAttributes(arena)
        case .dequantizeLinear:
            m.pointee.op_case = MODELKIT__V1__NODE__OP_DEQUANTIZE_LINEAR
            m.pointee.dequantize_linear = try noAttributes(arena)
        }
        return m
    }

    static func graph(_ g: Graph, _ arena: ProtoArena) throws -> UnsafeMutablePointer<Modelkit__V1__Graph> {
        let m = try arena.message(modelkit__v1__graph__init)
        m.pointee.n_inputs = g.inputs.count
        m.pointee.inputs = try arena.pointers(g.inputs.map { try valueInfo($0, arena) })
        m.pointee.n_outputs = g.outputs.count
        m.pointee.outputs = try arena.strings(g.outputs)
        m.pointee.n_nodes = g.nodes.count
        m.pointee.nodes = try arena.pointers(g.nodes.map { try node($0, arena) })
        let initializers = g.initializers.sorted { $0.key < $1.key }
        m.pointee.n_initializers = initializers.count
        m.pointee.initializers = try arena.pointers(initializers.map { try tensor($0.key, $0.value, arena) })
        let quantized = try g.valueQuantization.sorted { $0.key < $1.key }.map { name, parameters in
            let v = try arena.message(modelkit__v1__quantized_value__init)
            v.pointee.name = try arena.string(name)
            v.pointee.quantization = try quantization(parameters, arena)
            return v
        }
        m.pointee.n_value_quantization = quantized.count
        m.pointee.value_quantization = try arena.pointers(quantized)
        return m
    }

    static func stringEntries(_ map: [String: String], _ arena: ProtoArena)
        throws -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<Modelkit__V1__StringEntry>?>?) {
        let entries = try map.sorted { $0.key < $1.key }.map { key, value in
            let e = try arena.message(modelkit__v1__string_entry__init)
            e.pointee.key = try arena.string(key)
            e.pointee.value = try arena.string(value)
            return e
        }
        return (entries.count, try arena.pointers(entries))
    }

    static func metadata(_ d: ModelMetadata, _ arena: ProtoArena) throws -> UnsafeMutablePointer<Modelkit__V1__Metadata> {
        let m = try arena.message(modelkit__v1__metadata__init)
        m.pointee.producer_name = try arena.string(d.producerName)
        m.pointee.producer_version = try arena.string(d.producerVersion)
        m.pointee.created_at = d.createdAt
        m.pointee.description = try arena.string(d.description)
        m.pointee.n_labels = d.labels.count
        m.pointee.labels = try arena.strings(d.labels)
        if let n = d.normalization {
            let p = try arena.message(modelkit__v1__input_normalization__init)
            p.pointee.pixel_scale = n.pixelScale
            p.pointee.n_mean = n.mean.count
            p.pointee.mean = try arena.array(n.mean)
            p.pointee.n_std = n.std.count
            p.pointee.std = try arena.array(n.std)
            m.pointee.normalization = p
        }
        (m.pointee.n_properties, m.pointee.properties) = try stringEntries(d.properties, arena)
        return m
    }

    static func trainingState(_ t: TrainingState, _ arena: ProtoArena) throws -> UnsafeMutablePointer<Modelkit__V1__TrainingState> {
        let m = try arena.message(modelkit__v1__training_state__init)
        m.pointee.epoch = Int64(t.epoch)
        m.pointee.step = t.step
        m.pointee.step_in_epoch = t.stepInEpoch
        let o = try arena.message(modelkit__v1__optimizer_state__init)
        o.pointee.name = try arena.string(t.optimizer.name)
        let hyper = try t.optimizer.hyperparameters.sorted { $0.key < $1.key }.map { key, value in
            let e = try arena.message(modelkit__v1__double_entry__init)
            e.pointee.key = try arena.string(key)
            e.pointee.value = value
            return e
        }
        o.pointee.n_hyperparameters = hyper.count
        o.pointee.hyperparameters = try arena.pointers(hyper)
        o.pointee.step = t.optimizer.step
        let slots = t.optimizer.slots.sorted { $0.key < $1.key }
        o.pointee.n_slots = slots.count
        o.pointee.slots = try arena.pointers(slots.map { try tensor($0.key, $0.value, arena) })
        m.pointee.optimizer = o
        m.pointee.n_rng_state = t.rngState.count
        m.pointee.rng_state = try arena.array(t.rngState)
        let metrics = try t.metricsHistory.map { e in
            let p = try arena.message(modelkit__v1__epoch_metrics__init)
            p.pointee.epoch = Int64(e.epoch)
            p.pointee.train_loss = e.trainLoss
            p.pointee.train_accuracy = e.trainAccuracy
            if let loss = e.validationLoss {
                p.pointee.validation_loss_presence_case = MODELKIT__V1__EPOCH_METRICS__VALIDATION_LOSS_PRESENCE_VALIDATION_LOSS
                p.pointee.validation_loss = loss
            }
            if let accuracy = e.validationAccuracy {
                p.pointee.validation_accuracy_presence_case =
                    MODELKIT__V1__EPOCH_METRICS__VALIDATION_ACCURACY_PRESENCE_VALIDATION_ACCURACY
                p.pointee.validation_accuracy = accuracy
            }
            p.pointee.seconds = e.seconds
            return p
        }
        m.pointee.n_metrics_history = metrics.count
        m.pointee.metrics_history = try arena.pointers(metrics)
        (m.pointee.n_configuration, m.pointee.configuration) = try stringEntries(t.configuration, arena)
        return m
    }
}
