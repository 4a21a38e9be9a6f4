import ModelKitCore
import ModelKitTraining

/// Everything that defines a training run. It is stored in the checkpoint (as key/value text
/// in `TrainingState.configuration`), so `--resume` continues with exactly the same recipe.
public struct TrainingRecipe: Hashable, Sendable {
    public var spec: ModelSpec
    public var epochs = 5
    public var batchSize = 32
    public var seed: UInt64 = 0
    /// adam, adamw or sgd.
    public var optimizer = "adam"
    public var learningRate: Float = 1e-3
    public var momentum: Float = 0.9
    public var nesterov = false
    public var weightDecay: Float = 0
    /// constant, step or cosine.
    public var schedule = "constant"
    public var warmupSteps = 0
    /// For the step schedule: multiply the rate by `decayRate` every `decayEpochs` epochs.
    public var decayRate: Float = 0.1
    public var decayEpochs = 2
    public var clipNorm: Float?
    /// Fraction of the training set held out (its end, as Keras does) for validation.
    public var validationSplit: Double = 0
    public var labels: [String] = []
    public var normalization = InputNormalization()

    public init(spec: ModelSpec) { self.spec = spec }

    public func validate() throws {
        func fail(_ reason: String) -> TrainerError { .invalidConfiguration(reason: reason) }
        guard epochs >= 1 else { throw fail("epochs must be at least 1") }
        guard batchSize >= 1 else { throw fail("batch size must be at least 1") }
        guard learningRate > 0, learningRate.isFinite else { throw fail("learning rate must be positive") }
        guard ["adam", "adamw", "sgd"].contains(optimizer) else { throw fail("optimizer must be adam, adamw or sgd") }
        guard ["constant", "step", "cosine"].contains(schedule) else { throw fail("schedule must be constant, step or cosine") }
        guard (0..<1).contains(validationSplit) else { throw fail("validation split must be in [0, 1)") }
        guard weightDecay >= 0, momentum >= 0, momentum < 1 else { throw fail("weight decay >= 0 and momentum in [0, 1) required") }
        if let clipNorm { guard clipNorm > 0 else { throw fail("clip norm must be positive") } }
        guard warmupSteps >= 0, decayEpochs >= 1, decayRate > 0 else { throw fail("warm-up >= 0, decay epochs >= 1, decay rate > 0 required") }
    }

    /// Builds the optimizer for `stepsPerEpoch` optimizer steps per epoch.
    public func makeOptimizer(stepsPerEpoch: Int) -> any Optimizer {
        var rate: LearningRateSchedule
        switch schedule {
        case "step": rate = .step(initial: learningRate, decayRate: decayRate, stepSize: max(1, decayEpochs * stepsPerEpoch))
        case "cosine": rate = .cosine(initial: learningRate, decaySteps: max(1, epochs * stepsPerEpoch - warmupSteps), minimumFactor: 0)
        default: rate = .constant(learningRate)
        }
        if warmupSteps > 0 { rate = .warmup(steps: warmupSteps, then: rate) }
        let options = OptimizerOptions(schedule: rate, weightDecay: optimizer == "adamw" ? 0 : weightDecay, clipNorm: clipNorm)
        switch optimizer {
        case "sgd": return SGD(options: options, momentum: momentum, nesterov: nesterov)
        case "adamw": return AdamW(options: options, weightDecay: weightDecay)
        default: return Adam(options: options)
        }
    }

    /// The recipe as text, for the checkpoint.
    public var configuration: [String: String] {
        var values: [String: String] = [
            "model_spec": spec.jsonText(),
            "epochs": "\(epochs)", "batch_size": "\(batchSize)", "seed": "\(seed)",
            "optimizer": optimizer, "learning_rate": "\(learningRate)", "momentum": "\(momentum)",
            "nesterov": "\(nesterov)", "weight_decay": "\(weightDecay)", "schedule": schedule,
            "warmup_steps": "\(warmupSteps)", "decay_rate": "\(decayRate)", "decay_epochs": "\(decayEpochs)",
            "validation_split": "\(validationSplit)",
        ]
        if let clipNorm { values["clip_norm"] = "\(clipNorm)" }
        return values
    }

    /// Reads a recipe back from a checkpoint's configuration; labels and normalisation come from its metadata.
    public init(configuration values: [String: String], metadata: ModelMetadata, source: String) throws {
        func fail(_ reason: String) -> TrainerError { .invalidCheckpoint(path: source, reason: reason) }
        func text(_ key: String) throws -> String {
            guard let value = values[key] else { throw fail("configuration lacks '\(key)'") }
            return value
        }
        func number<T: LosslessStringConvertible>(_ key: String, _ type: T.Type) throws -> T {
            guard let value = T(try text(key)) else { throw fail("configuration '\(key)' is not a number") }
            return value
        }
        spec = try ModelSpec.parse(json: Array(try text("model_spec").utf8), source: "\(source) (stored spec)")
        epochs = try number("epochs", Int.self)
        batchSize = try number("batch_size", Int.self)
        seed = try number("seed", UInt64.self)
        optimizer = try text("optimizer")
        learningRate = try number("learning_rate", Float.self)
        momentum = try number("momentum", Float.self)
        nesterov = try text("nesterov") == "true"
        weightDecay = try number("weight_decay", Float.self)
        schedule = try text("schedule")
        warmupSteps = try number("warmup_steps", Int.self)
        decayRate = try number("decay_rate", Float.self)
        decayEpochs = try number("decay_epochs", Int.self)
        validationSplit = try number("validation_split", Double.self)
        clipNorm = try values["clip_norm"].map { guard let v = Float($0) else { throw fail("clip_norm is not a number") }; return v }
        labels = metadata.labels
        normalization = metadata.normalization ?? InputNormalization()
        try validate()
    }
}
