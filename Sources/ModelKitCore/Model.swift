/// What a file holds: a deployable model or a resumable training checkpoint.
public enum ModelKind: String, Hashable, Sendable {
    case model
    case checkpoint
}

/// Metrics of one finished epoch.
public struct EpochMetrics: Hashable, Sendable {
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var validationLoss: Double?
    public var validationAccuracy: Double?
    public var seconds: Double

    public init(epoch: Int, trainLoss: Double, trainAccuracy: Double, validationLoss: Double? = nil,
                validationAccuracy: Double? = nil, seconds: Double = 0) {
        self.epoch = epoch
        self.trainLoss = trainLoss
        self.trainAccuracy = trainAccuracy
        self.validationLoss = validationLoss
        self.validationAccuracy = validationAccuracy
        self.seconds = seconds
    }
}

/// Optimizer state: its hyperparameters and one slot tensor per (slot kind, parameter),
/// keyed "<slot>/<parameter name>", e.g. "m/conv1.weight".
public struct OptimizerState: Hashable, Sendable {
    public var name: String
    public var hyperparameters: [String: Double]
    public var step: Int64
    public var slots: [String: Tensor]

    public init(name: String, hyperparameters: [String: Double] = [:], step: Int64 = 0, slots: [String: Tensor] = [:]) {
        self.name = name
        self.hyperparameters = hyperparameters
        self.step = step
        self.slots = slots
    }
}

/// Everything a checkpoint needs beyond the graph to resume training exactly.
public struct TrainingState: Hashable, Sendable {
    /// Epochs completed.
    public var epoch: Int
    /// Optimizer steps taken in total.
    public var step: Int64
    /// Steps taken within the current (unfinished) epoch; 0 at an epoch boundary.
    public var stepInEpoch: Int64
    public var optimizer: OptimizerState
    /// Random generator state words, in the generator's own order.
    public var rngState: [UInt64]
    public var metricsHistory: [EpochMetrics]
    /// The training recipe (model spec, batch size, data paths...) as key/value text.
    public var configuration: [String: String]

    public init(epoch: Int = 0, step: Int64 = 0, stepInEpoch: Int64 = 0, optimizer: OptimizerState,
                rngState: [UInt64] = [], metricsHistory: [EpochMetrics] = [], configuration: [String: String] = [:]) {
        self.epoch = epoch
        self.step = step
        self.stepInEpoch = stepInEpoch
        self.optimizer = optimizer
        self.rngState = rngState
        self.metricsHistory = metricsHistory
        self.configuration = configuration
    }
}

/// The in-memory form of a `.mkm` model or `.mkc` checkpoint.
public struct Model: Hashable, Sendable {
    public var kind: ModelKind
    public var graph: Graph
    public var metadata: ModelMetadata
    /// Present for checkpoints only.
    public var training: TrainingState?

    public init(kind: ModelKind = .model, graph: Graph, metadata: ModelMetadata = ModelMetadata(),
                training: TrainingState? = nil) {
        self.kind = kind
        self.graph = graph
        self.metadata = metadata
        self.training = training
    }
}
