/// Why a training-side operation was refused. Every case says what was wrong with what.
public enum TrainingError: Error, Hashable, Sendable, CustomStringConvertible {
    case shapeMismatch(layer: String, reason: String)
    case invalidConfiguration(layer: String, reason: String)
    case wrongInputCount(layer: String, expected: Int, actual: Int)
    case backwardBeforeForward(layer: String)
    case labelOutOfRange(index: Int, label: Int, classes: Int)
    case invalidInputNode(node: Int, input: Int)
    case invalidRandomState(reason: String)
    case optimizerStateMismatch(reason: String)
    case unknownParameter(name: String)

    public var description: String {
        switch self {
        case .shapeMismatch(let layer, let reason): return "\(layer): shape mismatch: \(reason)"
        case .invalidConfiguration(let layer, let reason): return "\(layer): invalid configuration: \(reason)"
        case .wrongInputCount(let layer, let expected, let actual):
            return "\(layer): expected \(expected) input(s), got \(actual)"
        case .backwardBeforeForward(let layer): return "\(layer): backward called without a training forward pass"
        case .labelOutOfRange(let index, let label, let classes):
            return "label \(label) at batch position \(index) is outside 0..<\(classes)"
        case .invalidInputNode(let node, let input):
            return "node \(node) reads node \(input), which is not an earlier node or the network input (-1)"
        case .invalidRandomState(let reason): return "invalid random generator state: \(reason)"
        case .optimizerStateMismatch(let reason): return "optimizer state does not match: \(reason)"
        case .unknownParameter(let name): return "no parameter named '\(name)'"
        }
    }
}
