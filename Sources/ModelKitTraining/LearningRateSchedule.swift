#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Learning rate as a function of the optimizer step (0-based: the step being taken).
public indirect enum LearningRateSchedule: Hashable, Sendable {
    case constant(Float)
    /// initial · decayRate^floor(step / stepSize).
    case step(initial: Float, decayRate: Float, stepSize: Int)
    /// Keras CosineDecay: initial · ((1 − minimumFactor)·½(1 + cos(π·min(step, decaySteps)/decaySteps)) + minimumFactor).
    case cosine(initial: Float, decaySteps: Int, minimumFactor: Float)
    /// Linear ramp over `steps` steps up to `then`'s first rate: rate(s) = then.rate(0)·(s+1)/steps,
    /// then `then` continues from its own step 0.
    case warmup(steps: Int, then: LearningRateSchedule)

    public func rate(at step: Int64) -> Float {
        switch self {
        case .constant(let rate):
            return rate
        case .step(let initial, let decayRate, let stepSize):
            let periods = stepSize > 0 ? Double(step / Int64(stepSize)) : 0
            return Float(Double(initial) * pow(Double(decayRate), periods))
        case .cosine(let initial, let decaySteps, let minimumFactor):
            guard decaySteps > 0 else { return initial }
            let progress = Double(min(step, Int64(decaySteps))) / Double(decaySteps)
            let cosine = 0.5 * (1 + cos(Double.pi * progress))
            return Float(Double(initial) * ((1 - Double(minimumFactor)) * cosine + Double(minimumFactor)))
        case .warmup(let steps, let then):
            if step < Int64(steps) { return then.rate(at: 0) * Float(step + 1) / Float(steps) }
            return then.rate(at: step - Int64(steps))
        }
    }

    /// Flat numeric form for OptimizerState.hyperparameters ("lr.kind", "lr.initial", ...).
    func encode(into values: inout [String: Double], prefix: String = "lr") {
        switch self {
        case .constant(let rate):
            values["\(prefix).kind"] = 0
            values["\(prefix).initial"] = Double(rate)
        case .step(let initial, let decayRate, let stepSize):
            values["\(prefix).kind"] = 1
            values["\(prefix).initial"] = Double(initial)
            values["\(prefix).decay_rate"] = Double(decayRate)
            values["\(prefix).step_size"] = Double(stepSize)
        case .cosine(let initial, let decaySteps, let minimumFactor):
            values["\(prefix).kind"] = 2
            values["\(prefix).initial"] = Double(initial)
            values["\(prefix).decay_steps"] = Double(decaySteps)
            values["\(prefix).minimum_factor"] = Double(minimumFactor)
        case .warmup(let steps, let then):
            values["\(prefix).kind"] = 3
            values["\(prefix).warmup_steps"] = Double(steps)
            then.encode(into: &values, prefix: prefix + ".then")
        }
    }

    static func decode(_ values: [String: Double], prefix: String = "lr") throws -> LearningRateSchedule {
        func value(_ key: String) throws -> Double {
            guard let v = values["\(prefix).\(key)"], v.isFinite else {
                throw TrainingError.optimizerStateMismatch(reason: "hyperparameter \(prefix).\(key) is missing")
            }
            return v
        }
        switch try value("kind") {
        case 0: return .constant(Float(try value("initial")))
        case 1: return .step(initial: Float(try value("initial")), decayRate: Float(try value("decay_rate")),
                             stepSize: Int(try value("step_size")))
        case 2: return .cosine(initial: Float(try value("initial")), decaySteps: Int(try value("decay_steps")),
                               minimumFactor: Float(try value("minimum_factor")))
        case 3: return .warmup(steps: Int(try value("warmup_steps")), then: try decode(values, prefix: prefix + ".then"))
        case let kind: throw TrainingError.optimizerStateMismatch(reason: "unknown schedule kind \(kind)")
        }
    }
}
