import CONNXSchema
import ModelKitProtobuf

// The writer's plain Swift description of an ONNX model, and its packing through the
// protobuf-c structs generated from Schemas/onnx_subset.proto.

enum ONNXAttributeValue {
    case int(Int64)
    case float(Float)
    case ints([Int64])
    case string(String)
}

struct ONNXOutNode {
    var name: String
    var opType: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [(name: String, value: ONNXAttributeValue)] = []
}

enum ONNXOutDimension {
    case value(Int)
    case parameter(String)
}

struct ONNXOutValueInfo {
    var name: String
    /// nil writes a tensor type without a shape.
    var dims: [ONNXOutDimension]?
    var elementType: ONNXOutElementType = .float
}

/// TensorProto.DataType values the writer produces.
enum ONNXOutElementType: Int32 {
    case float = 1
    case int8 = 3
    case int32 = 6
    case int64 = 7
}

enum ONNXOutTensorData {
    case float([Float])
    case int8([Int8])
    case int32([Int32])
    case int64([Int64])

    var elementType: ONNXOutElementType {
        switch self {
        case .float: return .float
        case .int8: return .int8
        case .int32: return .int32
        case .int64: return .int64
        }
    }
}

struct ONNXOutTensor {
    var name: String
    var dims: [Int]
    var data: ONNXOutTensorData
}

struct ONNXOutModel {
    var irVersion: Int64
    var opsetVersion: Int64
    var producerName: String
    var producerVersion: String
    var docString: String
    var graphName: String
    var nodes: [ONNXOutNode]
    var initializers: [ONNXOutTensor]
    var inputs: [ONNXOutValueInfo]
    var outputs: [ONNXOutValueInfo]
    var metadata: [(key: String, value: String)]
}

enum ONNXWriter {
    static func pack(_ model: ONNXOutModel) throws -> [UInt8] {
        let arena = ProtoArena { ONNXExportError.encodingFailed(reason: $0) }
        let proto: UnsafeMutablePointer<Onnx__ModelProto> = try arena.message(onnx__model_proto__init)
        proto.pointee.has_ir_version = 1
        proto.pointee.ir_version = model.irVersion
        let opset: UnsafeMutablePointer<Onnx__OperatorSetIdProto> = try arena.message(onnx__operator_set_id_proto__init)
        opset.pointee.domain = try arena.string("")
        opset.pointee.has_version = 1
        opset.pointee.version = model.opsetVersion
        proto.pointee.n_opset_import = 1
        proto.pointee.opset_import = try arena.pointers([opset])
        proto.pointee.producer_name = try arena.string(model.producerName)
        proto.pointee.producer_version = try arena.string(model.producerVersion)
        if !model.docString.isEmpty { proto.pointee.doc_string = try arena.string(model.docString) }
        let entries = try model.metadata.map { entry -> UnsafeMutablePointer<Onnx__StringStringEntryProto> in
            let m: UnsafeMutablePointer<Onnx__StringStringEntryProto> = try arena.message(onnx__string_string_entry_proto__init)
            m.pointee.key = try arena.string(entry.key)
            m.pointee.value = try arena.string(entry.value)
            return m
        }
        proto.pointee.n_metadata_props = entries.count
        proto.pointee.metadata_props = try arena.pointers(entries)

        let graph: UnsafeMutablePointer<Onnx__GraphProto> = try arena.message(onnx__graph_proto__init)
        graph.pointee.name = try arena.string(model.graphName)
        let nodes = try model.nodes.map { try node($0, arena) }
        graph.pointee.n_node = nodes.count
        graph.pointee.node = try arena.pointers(nodes)
        let initializers = try model.initializers.map { try tensor($0, arena) }
        graph.pointee.n_initializer = initializers.count
        graph.pointee.initializer = try arena.pointers(initializers)
        let inputs = try model.inputs.map { try valueInfo($0, arena) }
        graph.pointee.n_input = inputs.count
        graph.pointee.input = try arena.pointers(inputs)
        let outputs = try model.outputs.map { try valueInfo($0, arena) }
        graph.pointee.n_output = outputs.count
        graph.pointee.output = try arena.pointers(outputs)
        proto.pointee.graph = graph

        let size = onnx__model_proto__get_packed_size(proto)
        let packed = [UInt8](unsafeUninitializedCapacity: max(size, 1)) { buffer, initialized in
            initialized = size > 0 ? onnx__model_proto__pack(proto, buffer.baseAddress) : 0
        }
        guard packed.count == size else {
            throw ONNXExportError.encodingFailed(reason: "protobuf-c packed \(packed.count) bytes, expected \(size)")
        }
        return packed
    }

    private static func node(_ n: ONNXOutNode, _ arena: ProtoArena) throws -> UnsafeMutablePointer<Onnx__NodeProto> {
        let m: UnsafeMutablePointer<Onnx__NodeProto> = try arena.message(onnx__node_proto__init)
        m.pointee.name = try arena.string(n.name)
        m.pointee.op_type = try arena.string(n.opType)
        m.pointee.n_input = n.inputs.count
        m.pointee.input = try arena.strings(n.inputs)
        m.pointee.n_output = n.outputs.count
        m.pointee.output = try arena.strings(n.outputs)
        let attributes = try n.attributes.map { try attribute($0.name, $0.value, arena) }
        m.pointee.n_attribute = attributes.count
        m.pointee.attribute = try arena.pointers(attributes)
        return m
    }

    private static func attribute(_ name: String, _ value: ONNXAttributeValue, _ arena: ProtoArena)
        throws -> UnsafeMutablePointer<Onnx__AttributeProto> {
        let m: UnsafeMutablePointer<Onnx__AttributeProto> = try arena.message(onnx__attribute_proto__init)
        m.pointee.name = try arena.string(name)
        m.pointee.has_type = 1
        switch value {
        case .int(let i):
            m.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
            m.pointee.has_i = 1
            m.pointee.i = i
        case .float(let f):
            m.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
            m.pointee.has_f = 1
            m.pointee.f = f
        case .ints(let ints):
            m.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS
            m.pointee.n_ints = ints.count
            m.pointee.ints = try arena.array(ints)
        case .string(let s):
            m.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING
            m.pointee.has_s = 1
            m.pointee.s = try arena.bytes(Array(s.utf8))
        }
        return m
    }

    private static func tensor(_ t: ONNXOutTensor, _ arena: ProtoArena) throws -> UnsafeMutablePointer<Onnx__TensorProto> {
        let m: UnsafeMutablePointer<Onnx__TensorProto> = try arena.message(onnx__tensor_proto__init)
        m.pointee.name = try arena.string(t.name)
        m.pointee.n_dims = t.dims.count
        m.pointee.dims = try arena.array(t.dims.map { Int64($0) })
        m.pointee.has_data_type = 1
        m.pointee.has_raw_data = 1
        m.pointee.data_type = t.data.elementType.rawValue
        switch t.data {
        case .float(let values):
            m.pointee.raw_data = try arena.bytes(littleEndianBytes(values.map(\.bitPattern)))
        case .int8(let values):
            m.pointee.raw_data = try arena.bytes(values.map { UInt8(bitPattern: $0) })
        case .int32(let values):
            m.pointee.raw_data = try arena.bytes(littleEndianBytes(values.map { UInt32(bitPattern: $0) }))
        case .int64(let values):
            m.pointee.raw_data = try arena.bytes(littleEndianBytes(values.map { UInt64(bitPattern: $0) }))
        }
        return m
    }

    private static func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * MemoryLayout<T>.size)
        for value in values {
            let little = value.littleEndian
            withUnsafeBytes(of: little) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    private static func valueInfo(_ v: ONNXOutValueInfo, _ arena: ProtoArena) throws -> UnsafeMutablePointer<Onnx__ValueInfoProto> {
        let m: UnsafeMutablePointer<Onnx__ValueInfoProto> = try arena.message(onnx__value_info_proto__init)
        m.pointee.name = try arena.string(v.name)
        let type: UnsafeMutablePointer<Onnx__TypeProto> = try arena.message(onnx__type_proto__init)
        let tensorType: UnsafeMutablePointer<Onnx__TypeProto__Tensor> = try arena.message(onnx__type_proto__tensor__init)
        tensorType.pointee.has_elem_type = 1
        tensorType.pointee.elem_type = v.elementType.rawValue
        if let dims = v.dims {
            let shape: UnsafeMutablePointer<Onnx__TensorShapeProto> = try arena.message(onnx__tensor_shape_proto__init)
            let dimensions = try dims.map { dim -> UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension> in
                let d: UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension> =
                    try arena.message(onnx__tensor_shape_proto__dimension__init)
                switch dim {
                case .value(let value):
                    d.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                    d.pointee.dim_value = Int64(value)
                case .parameter(let name):
                    d.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                    d.pointee.dim_param = try arena.string(name)
                }
                return d
            }
            shape.pointee.n_dim = dimensions.count
            shape.pointee.dim = try arena.pointers(dimensions)
            tensorType.pointee.shape = shape
        }
        type.pointee.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
        type.pointee.tensor_type = tensorType
        m.pointee.type = type
        return m
    }
}
