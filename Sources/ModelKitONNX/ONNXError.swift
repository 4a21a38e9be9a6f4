import ModelKitCore

/// One ONNX op type the importer does not support, with every node that uses it.
public struct UnsupportedONNXOperator: Hashable, Sendable, CustomStringConvertible {
    /// "LSTM", or "domain:Op" for ops outside the default domain.
    public var opType: String
    public var nodes: [String]

    public init(opType: String, nodes: [String]) {
        self.opType = opType
        self.nodes = nodes
    }

    public var description: String {
        let shown = nodes.prefix(8).map { "'\($0)'" }.joined(separator: ", ")
        return "\(opType) (\(nodes.count == 1 ? "node" : "nodes") \(shown)\(nodes.count > 8 ? ", ..." : ""))"
    }
}

/// Why an ONNX file could not be imported. Every message is one line and names the node, op,
/// tensor or value at fault.
public enum ONNXError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file could not be read.
    case file(FileError)
    /// The bytes are not a protobuf ModelProto (truncated, garbage, or not ONNX).
    case malformed(reason: String)
    /// The file or a size inside it is larger than the importer's limits allow.
    case limitExceeded(what: String, value: Int, limit: Int)
    /// The model imports no default-domain opset, or one outside 13...21.
    case unsupportedOpset(version: Int64, supported: ClosedRange<Int64>)
    case missingOpset
    /// Every op type (with its nodes) that the importer cannot translate.
    case unsupportedOperators([UnsupportedONNXOperator])
    /// A node of a supported op uses an attribute value or input form the importer cannot translate.
    case unsupportedNode(node: String, op: String, reason: String)
    /// A node is not well-formed ONNX (missing input, wrong attribute type, bad shape...).
    case invalidNode(node: String, op: String, reason: String)
    case invalidTensor(name: String, reason: String)
    case unsupportedDataType(name: String, dataType: Int32)
    /// A tensor keeps its data outside the model file (data_location EXTERNAL).
    case externalData(name: String)
    case invalidGraphInput(name: String, reason: String)
    case invalidGraph(reason: String)

    public var description: String {
        switch self {
        case .file(let error):
            return error.description
        case .malformed(let reason):
            return "not a valid ONNX model: \(reason)"
        case .limitExceeded(let what, let value, let limit):
            return "ONNX \(what) is \(value), more than the limit of \(limit)"
        case .unsupportedOpset(let version, let supported):
            return "ONNX opset \(version) is not supported (supported: \(supported.lowerBound)...\(supported.upperBound))"
        case .missingOpset:
            return "ONNX model imports no opset of the default domain (ai.onnx)"
        case .unsupportedOperators(let operators):
            return "unsupported ONNX ops: " + operators.map(\.description).joined(separator: ", ")
        case .unsupportedNode(let node, let op, let reason):
            return "ONNX node '\(node)' (\(op)): not supported: \(reason)"
        case .invalidNode(let node, let op, let reason):
            return "ONNX node '\(node)' (\(op)): \(reason)"
        case .invalidTensor(let name, let reason):
            return "ONNX tensor '\(name)': \(reason)"
        case .unsupportedDataType(let name, let dataType):
            return "ONNX tensor '\(name)' has data type \(ONNXDataType.name(dataType)), which modelkit does not import"
        case .externalData(let name):
            return "ONNX tensor '\(name)' keeps its data in an external file (data_location EXTERNAL); "
                + "save the model with all tensors inside the .onnx file"
        case .invalidGraphInput(let name, let reason):
            return "ONNX graph input '\(name)': \(reason)"
        case .invalidGraph(let reason):
            return "ONNX graph: \(reason)"
        }
    }
}

/// TensorProto.DataType values the importer knows by name.
enum ONNXDataType {
    static let float: Int32 = 1
    static let uint8: Int32 = 2
    static let int8: Int32 = 3
    static let uint16: Int32 = 4
    static let int16: Int32 = 5
    static let int32: Int32 = 6
    static let int64: Int32 = 7
    static let string: Int32 = 8
    static let bool: Int32 = 9
    static let float16: Int32 = 10
    static let double: Int32 = 11
    static let uint32: Int32 = 12
    static let uint64: Int32 = 13

    static func name(_ value: Int32) -> String {
        let names = [0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32",
                     7: "INT64", 8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64",
                     14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16"]
        return names[Int(value)] ?? "type \(value)"
    }
}
