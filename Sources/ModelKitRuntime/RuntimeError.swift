import ModelKitCore

/// Why a session could not be created or run.
public enum RuntimeError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidGraph(GraphError)
    case unknownInput(name: String, known: [String])
    case missingInput(name: String)
    case inputShapeMismatch(name: String, expected: Shape, actual: Shape)
    case inputDataLength(name: String, expected: Int, actual: Int)
    case unsupportedDType(name: String, dtype: DType)
    case outOfMemory(bytes: Int)
    case notSingleInputOutput(inputs: Int, outputs: Int)
    case bufferCount(what: String, expected: Int, actual: Int)
    case outputBufferTooSmall(name: String, needed: Int, capacity: Int)

    public var description: String {
        switch self {
        case .invalidGraph(let error):
            return error.description
        case .unknownInput(let name, let known):
            return "model has no input '\(name)'; its inputs are \(known.map { "'\($0)'" }.joined(separator: ", "))"
        case .missingInput(let name):
            return "no value given for model input '\(name)'"
        case .inputShapeMismatch(let name, let expected, let actual):
            return "input '\(name)' has shape \(actual), the model expects \(expected)"
        case .inputDataLength(let name, let expected, let actual):
            return "input '\(name)' has \(actual) values, its shape needs \(expected)"
        case .unsupportedDType(let name, let dtype):
            return "value '\(name)' is \(dtype), which the runtime cannot take here"
        case .outOfMemory(let bytes):
            return "cannot allocate \(bytes) bytes for the tensor arena"
        case .notSingleInputOutput(let inputs, let outputs):
            return "model has \(inputs) inputs and \(outputs) outputs; name each input and output"
        case .bufferCount(let what, let expected, let actual):
            return "got \(actual) \(what) buffers, the model has \(expected)"
        case .outputBufferTooSmall(let name, let needed, let capacity):
            return "output '\(name)' needs \(needed) values, its buffer holds \(capacity)"
        }
    }
}
