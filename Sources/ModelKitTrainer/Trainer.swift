import Foundation
import ModelKitCore
import ModelKitFormat
import ModelKitTraining

/// What the trainer reports while it runs.
public enum TrainerEvent {
    /// After each optimizer step: running means over the epoch so far.
    case step(epoch: Int, stepInEpoch: Int, stepsPerEpoch: Int, loss: Double, accuracy: Double, imagesPerSecond: Double)
    case epochFinished(EpochMetrics)
    case checkpointWritten(path: String)
}

/// Where and how often checkpoints are written.
public struct CheckpointPolicy: Sendable {
    public var directory: String
    /// Also write a checkpoint every this many steps (0: only at epoch ends).
    public var everySteps: Int
    /// Step checkpoints kept (the oldest are deleted); `best.mkc` is kept besides.
    public var keepLast: Int
    public var compressionLevel: Int32

    public init(directory: String, everySteps: Int = 0, keepLast: Int = 3, compressionLevel: Int32 = 3) {
        self.directory = directory
        self.everySteps = everySteps
        self.keepLast = max(1, keepLast)
        self.compressionLevel = compressionLevel
    }
}

/// Runs mini-batch training with exact resume: the checkpoint holds the weights, the optimizer
/// slots, the shuffle generator as it was when the epoch began, the dropout generator, the
/// position within the epoch and the epoch's running sums, so a resumed run computes the very
/// same steps as an uninterrupted one.
public final class Trainer {
    public let recipe: TrainingRecipe
    public let network: Network
    public let optimizer: any Optimizer
    public let stepsPerEpoch: Int
    public private(set) var epoch = 0
    public private(set) var step: Int64 = 0
    public private(set) var stepInEpoch = 0
    public private(set) var metricsHistory: [EpochMetrics] = []
    /// The shuffle generator as it was at the start of the current epoch.
    private var epochStartShuffle: RandomGenerator
    private var running = RunningSums()
    private var bestScore = -Double.infinity

    struct RunningSums: Equatable {
        var loss: Double = 0
        var correct = 0
        var seen = 0
        var seconds: Double = 0
    }

    /// A fresh run.
    public init(recipe: TrainingRecipe, trainingCount: Int) throws {
        try recipe.validate()
        self.recipe = recipe
        network = try recipe.spec.build(seed: recipe.seed)
        stepsPerEpoch = Trainer.steps(trainingCount: trainingCount, batch: recipe.batchSize)
        optimizer = recipe.makeOptimizer(stepsPerEpoch: stepsPerEpoch)
        // A generator of its own for shuffling, so architecture changes don't change the data order.
        epochStartShuffle = RandomGenerator(seed: recipe.seed ^ 0x5348_5546_464C_4521)
    }

    /// Continues the run saved in `checkpoint`.
    public init(resuming checkpoint: Model, source: String, trainingCount: Int) throws {
        func fail(_ reason: String) -> TrainerError { .invalidCheckpoint(path: source, reason: reason) }
        guard checkpoint.kind == .checkpoint, let state = checkpoint.training else {
            throw fail("it is a model, not a training checkpoint")
        }
        recipe = try TrainingRecipe(configuration: state.configuration, metadata: checkpoint.metadata, source: source)
        network = try recipe.spec.build(seed: recipe.seed)
        stepsPerEpoch = Trainer.steps(trainingCount: trainingCount, batch: recipe.batchSize)
        optimizer = recipe.makeOptimizer(stepsPerEpoch: stepsPerEpoch)
        for parameter in network.parameters {
            guard let tensor = checkpoint.graph.initializers[parameter.name], let values = tensor.floats,
                  values.count == parameter.count else {
                throw fail("parameter '\(parameter.name)' is missing or has the wrong size")
            }
            parameter.value = values
        }
        var slots = state.optimizer.slots
        for (key, tensor) in slots {  // the optimizer keeps slots flat
            slots[key] = Tensor(shape: [tensor.elementCount], storage: tensor.storage)
        }
        var optimizerState = state.optimizer
        optimizerState.slots = slots
        do {
            try optimizer.importState(optimizerState)
        } catch let error as TrainingError {
            throw fail(error.description)
        }
        guard state.rngState.count == 8 else { throw fail("expected 8 generator state words, found \(state.rngState.count)") }
        do {
            epochStartShuffle = try RandomGenerator(stateWords: Array(state.rngState[0..<4]))
            network.rng = try RandomGenerator(stateWords: Array(state.rngState[4..<8]))
        } catch let error as TrainingError {
            throw fail(error.description)
        }
        epoch = state.epoch
        step = state.step
        stepInEpoch = Int(state.stepInEpoch)
        metricsHistory = state.metricsHistory
        guard stepsPerEpoch == Int(state.configuration["steps_per_epoch"] ?? "") else {
            throw fail("it was trained on a dataset of another size (\(state.configuration["steps_per_epoch"] ?? "?") steps per epoch, now \(stepsPerEpoch))")
        }
        let number = { (key: String) in Double(state.configuration[key] ?? "") }
        running = RunningSums(loss: number("epoch_loss_sum") ?? 0, correct: Int(number("epoch_correct") ?? 0),
                              seen: Int(number("epoch_seen") ?? 0), seconds: number("epoch_seconds") ?? 0)
        bestScore = number("best_score") ?? -.infinity
    }

    static func steps(trainingCount: Int, batch: Int) -> Int { (trainingCount + batch - 1) / batch }

    public var isFinished: Bool { epoch >= recipe.epochs }

    /// The current state as a checkpoint (`kind == .checkpoint`).
    public func checkpoint(description: String = "") throws -> Model {
        let graph = try network.graph(inputName: "image", outputName: "probabilities")
        var optimizerState = optimizer.exportState()
        // Slots are stored with their parameter's shape, as the format requires.
        for (key, tensor) in optimizerState.slots {
            let parameterName = key.split(separator: "/", maxSplits: 1).last.map(String.init) ?? key
            if let parameter = network.parameter(named: parameterName) {
                optimizerState.slots[key] = Tensor(shape: Shape(parameter.shape), storage: tensor.storage)
            }
        }
        var configuration = recipe.configuration
        configuration["steps_per_epoch"] = "\(stepsPerEpoch)"
        configuration["epoch_loss_sum"] = "\(running.loss)"
        configuration["epoch_correct"] = "\(running.correct)"
        configuration["epoch_seen"] = "\(running.seen)"
        configuration["epoch_seconds"] = "\(running.seconds)"
        if bestScore.isFinite { configuration["best_score"] = "\(bestScore)" }
        let training = TrainingState(epoch: epoch, step: step, stepInEpoch: Int64(stepInEpoch), optimizer: optimizerState,
                                     rngState: epochStartShuffle.stateWords + network.rng.stateWords,
                                     metricsHistory: metricsHistory, configuration: configuration)
        let metadata = ModelMetadata(createdAt: Int64(Date().timeIntervalSince1970),
                                     description: description, labels: recipe.labels, normalization: recipe.normalization)
        return Model(kind: .checkpoint, graph: graph, metadata: metadata, training: training)
    }

    /// Trains until `recipe.epochs` epochs are complete.
    public func run(training data: TrainingData, validation: TrainingData?, policy: CheckpointPolicy?,
                    events: (TrainerEvent) -> Void) throws {
        guard data.sampleShape.reduce(1, *) == network.inputShape.reduce(1, *) else {
            throw TrainerError.datasetMismatch(reason: "samples are \(data.sampleShape), the model takes \(network.inputShape)")
        }
        let batchSize = recipe.batchSize
        while epoch < recipe.epochs {
            var shuffle = epochStartShuffle
            var order = Array(0..<data.count)
            shuffle.shuffle(&order)
            let epochStarted = DispatchTime.now()
            let secondsBefore = running.seconds
            while stepInEpoch < stepsPerEpoch {
                let start = stepInEpoch * batchSize
                let indices = order[start..<min(start + batchSize, data.count)]
                let (batch, labels) = data.batch(indices)
                let input = Batch(shape: [indices.count] + network.inputShape, values: batch.values)
                let logits = try network.forward(input, training: true)
                let result = try SoftmaxCrossEntropy.compute(logits: logits, labels: labels)
                guard result.loss.isFinite else { throw TrainerError.diverged(epoch: epoch + 1, step: step) }
                for parameter in network.trainableParameters { parameter.zeroGradient() }
                try network.backward(result.gradient)
                try optimizer.step(network.trainableParameters)
                step += 1
                stepInEpoch += 1
                running.loss += Double(result.loss) * Double(indices.count)
                running.correct += result.correct
                running.seen += indices.count
                running.seconds = secondsBefore + seconds(since: epochStarted)
                events(.step(epoch: epoch + 1, stepInEpoch: stepInEpoch, stepsPerEpoch: stepsPerEpoch,
                             loss: running.loss / Double(running.seen), accuracy: Double(running.correct) / Double(running.seen),
                             imagesPerSecond: Double(running.seen) / max(running.seconds, 1e-9)))
                if let policy, policy.everySteps > 0, step % Int64(policy.everySteps) == 0, stepInEpoch < stepsPerEpoch {
                    try writeCheckpoint(policy: policy, events: events)
                }
            }
            // The epoch is complete: record it and move on before checkpointing, so the epoch
            // checkpoint resumes at the start of the next epoch.
            var metrics = EpochMetrics(epoch: epoch + 1, trainLoss: running.loss / Double(max(running.seen, 1)),
                                       trainAccuracy: Double(running.correct) / Double(max(running.seen, 1)),
                                       seconds: running.seconds)
            if let validation {
                let (loss, accuracy) = try evaluate(validation)
                metrics.validationLoss = loss
                metrics.validationAccuracy = accuracy
            }
            metricsHistory.append(metrics)
            epoch += 1
            stepInEpoch = 0
            epochStartShuffle = shuffle
            running = RunningSums()
            events(.epochFinished(metrics))
            if let policy {
                try writeCheckpoint(policy: policy, events: events)
                let score = metrics.validationAccuracy ?? -metrics.trainLoss
                if score > bestScore {
                    bestScore = score
                    try write(to: policy.directory + "/best.mkc", policy: policy, events: events)
                }
            }
        }
    }

    /// Mean loss and accuracy over `data`, in inference mode.
    public func evaluate(_ data: TrainingData, batchSize: Int = 500) throws -> (loss: Double, accuracy: Double) {
        var loss = 0.0
        var correct = 0
        var start = 0
        while start < data.count {
            let end = min(start + batchSize, data.count)
            let (batch, labels) = data.batch(start..<end)
            let logits = try network.forward(Batch(shape: [end - start] + network.inputShape, values: batch.values), training: false)
            let result = try SoftmaxCrossEntropy.compute(logits: logits, labels: labels)
            loss += Double(result.loss) * Double(end - start)
            correct += result.correct
            start = end
        }
        return (loss / Double(max(data.count, 1)), Double(correct) / Double(max(data.count, 1)))
    }

    /// Predicted class per sample, in inference mode.
    public func predict(_ data: TrainingData, batchSize: Int = 500) throws -> [Int] {
        var predictions: [Int] = []
        predictions.reserveCapacity(data.count)
        var start = 0
        while start < data.count {
            let end = min(start + batchSize, data.count)
            let (batch, _) = data.batch(start..<end)
            let logits = try network.forward(Batch(shape: [end - start] + network.inputShape, values: batch.values), training: false)
            let classes = logits.shape.last ?? 1
            for row in 0..<(end - start) {
                let scores = logits.values[(row * classes)..<((row + 1) * classes)]
                predictions.append(scores.indices.max { scores[$0] < scores[$1] }! - row * classes)
            }
            start = end
        }
        return predictions
    }

    private func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }

    private func writeCheckpoint(policy: CheckpointPolicy, events: (TrainerEvent) -> Void) throws {
        let name = String(format: "checkpoint-e%03d-s%07lld.mkc", epoch, step)
        try write(to: policy.directory + "/" + name, policy: policy, events: events)
        try CheckpointDirectory.prune(policy.directory, keepLast: policy.keepLast)
    }

    private func write(to path: String, policy: CheckpointPolicy, events: (TrainerEvent) -> Void) throws {
        try ModelFile.write(try checkpoint(), to: path, compressionLevel: policy.compressionLevel)
        events(.checkpointWritten(path: path))
    }
}

/// The numbered checkpoints of a run directory.
public enum CheckpointDirectory {
    /// Step/epoch checkpoints, oldest first (their names sort by epoch, then step).
    public static func checkpoints(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("checkpoint-") && $0.hasSuffix(".mkc") }.sorted().map { directory + "/" + $0 }
    }

    /// The newest checkpoint in `directory`, if any.
    public static func latest(in directory: String) -> String? { checkpoints(in: directory).last }

    /// Removes the temporary files that atomic writes leave behind when the process is killed
    /// between creating the temporary file and renaming it (`.NAME.mkc.tmp-XXXXXX`). Call it only
    /// when no write into `directory` is in flight: at the start of a run. Returns what it removed.
    @discardableResult
    public static func removeStaleTemporaryFiles(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var removed: [String] = []
        for name in names where isStaleTemporaryName(name) {
            let path = directory + "/" + name
            if (try? FileManager.default.removeItem(atPath: path)) != nil { removed.append(path) }
        }
        return removed.sorted()
    }

    /// `.checkpoint-….mkc.tmp-XXXXXX` or `.best.mkc.tmp-XXXXXX`: the temporary names of
    /// `FileSystem.writeFileAtomically` for the files a run writes, and nothing else.
    static func isStaleTemporaryName(_ name: String) -> Bool {
        guard let marker = name.range(of: ".mkc.tmp-") else { return false }
        let target = name[name.index(after: name.startIndex)..<marker.lowerBound]
        return name.hasPrefix(".") && (target.hasPrefix("checkpoint-") || target == "best")
            && name[marker.upperBound...].count == 6
    }

    static func prune(_ directory: String, keepLast: Int) throws {
        for path in checkpoints(in: directory).dropLast(keepLast) {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}
