/// Why a graph is not valid. Every case names the node or value at fault.
public enum GraphError: Error, Hashable, Sendable, CustomStringConvertible {
    case emptyGraph
    case tooManyNodes(count: Int, limit: Int)
    case duplicateValue(name: String)
    case danglingInput(node: String, input: String)
    case danglingOutput(name: String)
    case wrongInputCount(node: String, op: String, expected: ClosedRange<Int>, actual: Int)
    case wrongOutputCount(node: String, op: String, actual: Int)
    case cycle(nodes: [String])
    case shapeMismatch(node: String, op: String, reason: String)
    case invalidAttribute(node: String, op: String, reason: String)
    case unsupportedDType(node: String, op: String, dtype: DType)
    case invalidQuantization(node: String, op: String, reason: String)
    case tensorTooLarge(name: String, shape: Shape, limit: Int)
    case rankTooLarge(name: String, rank: Int, limit: Int)
    case invalidShape(name: String, shape: Shape)
    case missingInputShape(name: String)

    public var description: String {
        switch self {
        case .emptyGraph:
            return "graph has no outputs"
        case .tooManyNodes(let count, let limit):
            return "graph has \(count) nodes, more than the limit of \(limit)"
        case .duplicateValue(let name):
            return "value '\(name)' is defined more than once"
        case .danglingInput(let node, let input):
            return "node '\(node)' reads '\(input)', which no input, initializer or node defines"
        case .danglingOutput(let name):
            return "graph output '\(name)' is not defined by any node, input or initializer"
        case .wrongInputCount(let node, let op, let expected, let actual):
            let range = expected.upperBound == Int.max ? "at least \(expected.lowerBound)"
                : expected.lowerBound == expected.upperBound ? "\(expected.lowerBound)"
                : "\(expected.lowerBound)...\(expected.upperBound)"
            return "node '\(node)' (\(op)) has \(actual) inputs, expected \(range)"
        case .wrongOutputCount(let node, let op, let actual):
            return "node '\(node)' (\(op)) has \(actual) outputs, expected 1"
        case .cycle(let nodes):
            let shown = nodes.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
            return "graph has a cycle through nodes \(shown)\(nodes.count > 5 ? ", ..." : "")"
        case .shapeMismatch(let node, let op, let reason):
            return "node '\(node)' (\(op)): input shapes do not fit: \(reason)"
        case .invalidAttribute(let node, let op, let reason):
            return "node '\(node)' (\(op)): invalid attribute: \(reason)"
        case .unsupportedDType(let node, let op, let dtype):
            return "node '\(node)' (\(op)) does not support \(dtype) inputs"
        case .invalidQuantization(let node, let op, let reason):
            return "node '\(node)' (\(op)): invalid quantization: \(reason)"
        case .tensorTooLarge(let name, let shape, let limit):
            return "tensor '\(name)' of shape \(shape) exceeds the limit of \(limit) elements"
        case .rankTooLarge(let name, let rank, let limit):
            return "tensor '\(name)' has rank \(rank), more than the limit of \(limit)"
        case .invalidShape(let name, let shape):
            return "tensor '\(name)' has an invalid shape \(shape)"
        case .missingInputShape(let name):
            return "no shape given for graph input '\(name)'"
        }
    }
}
