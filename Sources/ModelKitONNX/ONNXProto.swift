import CONNXSchema
import ModelKitCore

// Plain Swift copies of the protobuf-c messages. The C tree is freed right after decoding, so
// no unsafe pointer outlives `ONNXModelProto.decode`.

struct ONNXTensorProto {
    var name: String
    var dims: [Int64]
    var dataType: Int32
    var floatData: [Float]
    var int32Data: [Int32]
    var int64Data: [Int64]
    var rawData: [UInt8]?
    var isExternal: Bool
}

struct ONNXAttribute {
    var name: String
    var type: Int32
    var isReference: Bool
    var f: Float?
    var i: Int64?
    var s: [UInt8]?
    var t: ONNXTensorProto?
    var floats: [Float]
    var ints: [Int64]
}

struct ONNXNodeProto {
    var name: String
    var opType: String
    var domain: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [ONNXAttribute]
}

enum ONNXDimension: Equatable {
    case value(Int64)
    case parameter(String)
    case unknown
}

struct ONNXValueInfo {
    var name: String
    /// nil when the value has no tensor type.
    var elementType: Int32?
    /// nil when the type carries no shape.
    var dims: [ONNXDimension]?
}

struct ONNXGraphProto {
    var name: String
    var nodes: [ONNXNodeProto]
    var initializers: [ONNXTensorProto]
    var inputs: [ONNXValueInfo]
    var outputs: [ONNXValueInfo]
}

struct ONNXModelProto {
    var irVersion: Int64
    var opsets: [(domain: String, version: Int64)]
    var producerName: String
    var producerVersion: String
    var docString: String
    var graph: ONNXGraphProto
    var metadata: [(key: String, value: String)]

    /// Parses a serialized ModelProto. protobuf-c rejects truncated or malformed wire data; the
    /// schema has no recursive messages, so parsing depth is bounded whatever the input.
    static func decode(_ bytes: [UInt8], limits: Limits) throws -> ONNXModelProto {
        guard bytes.count <= limits.maxPayloadBytes else {
            throw ONNXError.limitExceeded(what: "file size", value: bytes.count, limit: limits.maxPayloadBytes)
        }
        guard !bytes.isEmpty else { throw ONNXError.malformed(reason: "the file is empty") }
        let message = bytes.withUnsafeBufferPointer { buffer in
            onnx__model_proto__unpack(nil, buffer.count, buffer.baseAddress)
        }
        guard let message else {
            throw ONNXError.malformed(reason: "protobuf decoding failed (truncated or not an ONNX ModelProto)")
        }
        defer { onnx__model_proto__free_unpacked(message, nil) }
        let model = message.pointee
        guard let graph = model.graph else { throw ONNXError.malformed(reason: "the model has no graph") }
        let opsets = array(model.opset_import, model.n_opset_import).map { opset in
            (domain: string(opset.domain), version: opset.has_version != 0 ? opset.version : 0)
        }
        let metadata = array(model.metadata_props, model.n_metadata_props).map {
            (key: string($0.key), value: string($0.value))
        }
        return ONNXModelProto(
            irVersion: model.has_ir_version != 0 ? model.ir_version : 0,
            opsets: opsets,
            producerName: string(model.producer_name),
            producerVersion: string(model.producer_version),
            docString: string(model.doc_string),
            graph: try ONNXGraphProto(graph.pointee, limits: limits),
            metadata: metadata)
    }
}

extension ONNXGraphProto {
    init(_ graph: Onnx__GraphProto, limits: Limits) throws {
        guard graph.n_node <= limits.maxNodes else {
            throw ONNXError.limitExceeded(what: "node count", value: Int(graph.n_node), limit: limits.maxNodes)
        }
        name = string(graph.name)
        nodes = array(graph.node, graph.n_node).map(ONNXNodeProto.init)
        initializers = array(graph.initializer, graph.n_initializer).map(ONNXTensorProto.init)
        inputs = array(graph.input, graph.n_input).map(ONNXValueInfo.init)
        outputs = array(graph.output, graph.n_output).map(ONNXValueInfo.init)
    }
}

extension ONNXNodeProto {
    init(_ node: Onnx__NodeProto) {
        name = string(node.name)
        opType = string(node.op_type)
        domain = string(node.domain)
        inputs = strings(node.input, node.n_input)
        outputs = strings(node.output, node.n_output)
        attributes = array(node.attribute, node.n_attribute).map(ONNXAttribute.init)
    }
}

extension ONNXAttribute {
    init(_ attribute: Onnx__AttributeProto) {
        name = string(attribute.name)
        type = attribute.has_type != 0 ? Int32(bitPattern: attribute.type.rawValue) : 0
        isReference = attribute.ref_attr_name.map { $0.pointee != 0 } ?? false
        f = attribute.has_f != 0 ? attribute.f : nil
        i = attribute.has_i != 0 ? attribute.i : nil
        s = attribute.has_s != 0 ? bytes(attribute.s) : nil
        t = attribute.t.map { ONNXTensorProto($0.pointee) }
        floats = scalars(attribute.floats, attribute.n_floats)
        ints = scalars(attribute.ints, attribute.n_ints)
    }
}

extension ONNXTensorProto {
    init(_ tensor: Onnx__TensorProto) {
        name = string(tensor.name)
        dims = scalars(tensor.dims, tensor.n_dims)
        dataType = tensor.has_data_type != 0 ? tensor.data_type : 0
        floatData = scalars(tensor.float_data, tensor.n_float_data)
        int32Data = scalars(tensor.int32_data, tensor.n_int32_data)
        int64Data = scalars(tensor.int64_data, tensor.n_int64_data)
        rawData = tensor.has_raw_data != 0 ? bytes(tensor.raw_data) : nil
        isExternal = tensor.has_data_location != 0
            && tensor.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL
    }
}

extension ONNXValueInfo {
    init(_ info: Onnx__ValueInfoProto) {
        name = string(info.name)
        elementType = nil
        dims = nil
        guard let type = info.type?.pointee, type.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE,
              let tensor = type.tensor_type?.pointee else { return }
        elementType = tensor.has_elem_type != 0 ? tensor.elem_type : 0
        guard let shape = tensor.shape?.pointee else { return }
        dims = array(shape.dim, shape.n_dim).map { dimension in
            switch dimension.value_case {
            case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE: return .value(dimension.dim_value)
            case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM: return .parameter(string(dimension.dim_param))
            default: return .unknown
            }
        }
    }
}

// MARK: - C helpers

private func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    guard let pointer else { return "" }
    return String(cString: pointer)
}

private func strings(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ count: Int) -> [String] {
    guard let pointer, count > 0 else { return [] }
    return (0..<count).map { string(pointer[$0]) }
}

private func array<T>(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ count: Int) -> [T] {
    guard let pointer, count > 0 else { return [] }
    return (0..<count).compactMap { pointer[$0]?.pointee }
}

private func scalars<T>(_ pointer: UnsafeMutablePointer<T>?, _ count: Int) -> [T] {
    guard let pointer, count > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: pointer, count: count))
}

private func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
    guard let pointer = data.data, data.len > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: pointer, count: data.len))
}
