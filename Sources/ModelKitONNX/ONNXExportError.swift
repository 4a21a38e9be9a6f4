import ModelKitCore

/// Why a model could not be written as ONNX. Every message is one line naming the node or value.
public enum ONNXExportError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The graph does not validate.
    case invalidGraph(GraphError)
    /// A node uses a form the exporter cannot express in ONNX.
    case unsupportedNode(node: String, op: String, reason: String)
    /// Tensors of this element type (uint8) are not exported.
    case unsupportedDType(name: String, dtype: DType)
    /// A graph output the exporter cannot name as ONNX requires.
    case unsupportedOutput(name: String, reason: String)
    /// protobuf-c could not pack the message (out of memory, NUL in a name...).
    case encodingFailed(reason: String)

    public var description: String {
        switch self {
        case .invalidGraph(let error):
            return "cannot export an invalid graph: \(error)"
        case .unsupportedNode(let node, let op, let reason):
            return "node '\(node)' (\(op)) cannot be exported to ONNX: \(reason)"
        case .unsupportedDType(let name, let dtype):
            return "tensor '\(name)' is \(dtype); ONNX export takes float32, int8 and int32 tensors"
        case .unsupportedOutput(let name, let reason):
            return "graph output '\(name)' cannot be exported to ONNX: \(reason)"
        case .encodingFailed(let reason):
            return "ONNX encoding failed: \(reason)"
        }
    }
}
