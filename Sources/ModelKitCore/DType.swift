/// Element types a tensor can hold. Raw values are the names used in files and in `inspect`.
public enum DType: String, Sendable, CaseIterable, Hashable, CustomStringConvertible {
    case float32
    case int8
    case uint8
    case int32

    public var byteSize: Int {
        switch self {
        case .float32, .int32: return 4
        case .int8, .uint8: return 1
        }
    }

    public var description: String { rawValue }
}
