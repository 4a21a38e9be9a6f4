import ModelKitCore

/// Why a model could not be quantized. One line each, naming the cause.
public enum QuantizationError: Error, Hashable, Sendable, CustomStringConvertible {
    case noCalibrationData
    case notSingleInput(count: Int)
    case calibrationShape(expected: Shape, actual: Shape)
    case nonFiniteCalibration(value: String)
    case invalidOption(reason: String)
    case invalidGraph(reason: String)

    public var description: String {
        switch self {
        case .noCalibrationData:
            return "no calibration samples: give at least one"
        case .notSingleInput(let count):
            return "model has \(count) inputs; calibration feeds single-input models"
        case .calibrationShape(let expected, let actual):
            return "calibration batch has shape \(actual), the model input expects \(expected)"
        case .nonFiniteCalibration(let value):
            return "calibration produced a NaN or infinite value in '\(value)'; check the calibration data"
        case .invalidOption(let reason):
            return "invalid quantization option: \(reason)"
        case .invalidGraph(let reason):
            return "cannot quantize: \(reason)"
        }
    }
}
