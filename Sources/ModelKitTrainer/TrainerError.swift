/// Why training could not start or go on.
public enum TrainerError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidSpec(source: String, reason: String)
    case invalidConfiguration(reason: String)
    case datasetMismatch(reason: String)
    case invalidCheckpoint(path: String, reason: String)
    case diverged(epoch: Int, step: Int64)

    public var description: String {
        switch self {
        case .invalidSpec(let source, let reason): return "model spec \(source): \(reason)"
        case .invalidConfiguration(let reason): return "invalid training configuration: \(reason)"
        case .datasetMismatch(let reason): return "dataset does not fit the model: \(reason)"
        case .invalidCheckpoint(let path, let reason): return "\(path): cannot resume: \(reason)"
        case .diverged(let epoch, let step): return "training diverged (loss is not finite) in epoch \(epoch) at step \(step); lower the learning rate"
        }
    }
}
