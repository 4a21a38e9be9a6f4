import ArgumentParser
import Foundation
import ModelKitCore
import ModelKitData
import ModelKitFormat
import ModelKitTrainer
import ModelKitTraining

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a network on an IDX image dataset, writing resumable checkpoints.",
        discussion: """
            The default trains the reference CNN on Fashion-MNIST (Debian package \
            dataset-fashion-mnist) with Adam for 5 epochs at batch 32. A model is one of the \
            built-ins (--model seed-cnn|mlp) or a JSON spec (--spec FILE; see README). \
            Checkpoints go to --checkpoint-dir after every epoch (and every N steps with \
            --checkpoint-every); --resume FILE|DIR continues a run exactly where it stopped.
            """)

    @Option(help: "Built-in model: seed-cnn or mlp.")
    var model = "seed-cnn"

    @Option(help: "A JSON model spec file (overrides --model).")
    var spec: String?

    @Option(help: "Dataset directory with the standard IDX file names.")
    var data = IDXDataset.fashionMNISTDirectory

    @Option(help: "Training images IDX file (with --train-labels; overrides --data).")
    var trainImages: String?
    @Option(help: "Training labels IDX file.")
    var trainLabels: String?
    @Option(help: "Test images IDX file (with --test-labels; overrides --data).")
    var testImages: String?
    @Option(help: "Test labels IDX file.")
    var testLabels: String?

    @Option(help: "Class names, comma-separated (default: Fashion-MNIST's for its directory, else digits).")
    var labels: String?

    @Option(help: "Epochs to train.") var epochs = 5
    @Option(help: "Samples per optimizer step.") var batchSize = 32
    @Option(help: "Seed for weights, shuffling and dropout.") var seed: UInt64 = 0
    @Option(help: "adam, adamw or sgd.") var optimizer = "adam"
    @Option(help: "Learning rate.") var learningRate: Float = 1e-3
    @Option(help: "SGD momentum.") var momentum: Float = 0.9
    @Flag(help: "Nesterov momentum for SGD.") var nesterov = false
    @Option(help: "Weight decay (L2 for adam/sgd, decoupled for adamw).") var weightDecay: Float = 0
    @Option(help: "Learning-rate schedule: constant, step or cosine.") var schedule = "constant"
    @Option(help: "Linear warm-up steps.") var warmupSteps = 0
    @Option(help: "Clip the global gradient norm to this value.") var clipNorm: Float?
    @Option(help: "Fraction of the training set held out for validation.") var validationSplit: Double = 0

    @Option(help: "Directory for checkpoints.") var checkpointDir = "checkpoints"
    @Option(help: "Also checkpoint every N steps (0: epoch ends only).") var checkpointEvery = 0
    @Option(help: "Step/epoch checkpoints to keep (best.mkc is kept besides).") var keep = 3
    @Option(help: "Continue from a checkpoint file, or the newest one in a directory.") var resume: String?
    @Option(name: .shortAndLong, help: "Final checkpoint (export it with `modelkit export`).") var output = "model.mkc"
    @Option(help: "Write per-epoch metrics and the final evaluation as JSON.") var metricsJson: String?
    @Option(help: "Worker threads (default: all cores).") var threads: Int?

    func validate() throws {
        if (trainImages == nil) != (trainLabels == nil) { throw ValidationError("--train-images and --train-labels go together") }
        if (testImages == nil) != (testLabels == nil) { throw ValidationError("--test-images and --test-labels go together") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard checkpointEvery >= 0, keep >= 1 else { throw ValidationError("--checkpoint-every >= 0 and --keep >= 1") }
    }

    func run() throws {
        try reportingFailures {
            if let threads { setenv("MODELKIT_THREADS", "\(threads)", 1) }
            TrainingMemory.retainFreedMemory()
            let (trainSet, testSet) = try loadDatasets()

            var resumed: (model: Model, path: String)?
            if let resume {
                resumed = try loadResumeCheckpoint(resume)
            }
            let recipe = try resumed.map { try recipeOf(checkpoint: $0.model, path: $0.path) } ?? freshRecipe(imageShape: [trainSet.rows, trainSet.columns, 1])
            let classes = try recipe.spec.build(seed: 0).outputShape.last ?? 0
            let splitAt = trainSet.count - Int((Double(trainSet.count) * recipe.validationSplit).rounded())
            let training = try TrainingData.from(trainSet, range: 0..<splitAt, normalization: recipe.normalization,
                                                 classes: classes, source: "training set")
            let validation = splitAt < trainSet.count
                ? try TrainingData.from(trainSet, range: splitAt..<trainSet.count, normalization: recipe.normalization,
                                        classes: classes, source: "training set") : nil
            let test = try TrainingData.from(testSet, range: 0..<testSet.count, normalization: recipe.normalization,
                                             classes: classes, source: "test set")

            let trainer = try resumed.map { try Trainer(resuming: $0.model, source: $0.path, trainingCount: training.count) }
                ?? Trainer(recipe: recipe, trainingCount: training.count)
            try FileManager.default.createDirectory(atPath: checkpointDir, withIntermediateDirectories: true)
            for path in CheckpointDirectory.removeStaleTemporaryFiles(in: checkpointDir) {
                printError("removed \(path): left by an interrupted checkpoint write")
            }
            let policy = CheckpointPolicy(directory: checkpointDir, everySteps: checkpointEvery, keepLast: keep)

            print("training \(resumed == nil ? "" : "(resumed from \(resumed!.path), epoch \(trainer.epoch + 1) step \(trainer.stepInEpoch)) ")"
                  + "\(trainer.network.parameterCount) parameters on \(training.count) samples"
                  + "\(validation.map { ", validating on \($0.count)" } ?? ""); \(recipe.epochs) epochs of \(trainer.stepsPerEpoch) steps, batch \(recipe.batchSize), \(recipe.optimizer)")
            let progress = ProgressReporter(totalEpochs: recipe.epochs, batchSize: recipe.batchSize)
            let started = DispatchTime.now()
            try trainer.run(training: training, validation: validation, policy: policy) { progress.handle($0) }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9

            try ModelFile.write(try trainer.checkpoint(description: "trained by modelkit train"), to: output)
            let predictions = try trainer.predict(test)
            var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
            for (index, predicted) in predictions.enumerated() { confusion[Int(test.labels[index])][predicted] += 1 }
            let evaluation = Evaluation(labels: recipe.labels, confusion: confusion, seconds: 0)
            print("\ntraining took \(formatted(seconds, decimals: 1)) s; final checkpoint \(output)")
            print("test " + evaluation.text().replacingOccurrences(of: " in 0.00 s", with: ""))
            if let metricsJson {
                let object: [String: Any] = [
                    "epochs": trainer.metricsHistory.map { m -> [String: Any] in
                        var entry: [String: Any] = ["epoch": m.epoch, "train_loss": m.trainLoss, "train_accuracy": m.trainAccuracy,
                                                    "seconds": m.seconds]
                        if let v = m.validationLoss { entry["validation_loss"] = v }
                        if let v = m.validationAccuracy { entry["validation_accuracy"] = v }
                        return entry
                    },
                    "test_accuracy": evaluation.accuracy, "confusion": confusion, "labels": recipe.labels,
                    "seconds": seconds, "parameters": trainer.network.parameterCount, "checkpoint": output,
                ]
                try FileSystem.writeFileAtomically(metricsJson, bytes: Array(try jsonText(object).utf8) + [10])
            }
        }
    }

    func loadDatasets() throws -> (IDXDataset, IDXDataset) {
        let train = try trainImages.map { try IDXDataset.load(images: $0, labels: trainLabels!) }
            ?? IDXDataset.load(directory: data, split: .train)
        let test = try testImages.map { try IDXDataset.load(images: $0, labels: testLabels!) }
            ?? IDXDataset.load(directory: data, split: .test)
        guard train.rows == test.rows, train.columns == test.columns else {
            throw CommandFailure.data("training images are \(train.rows)x\(train.columns), test images \(test.rows)x\(test.columns)")
        }
        return (train, test)
    }

    func freshRecipe(imageShape: [Int]) throws -> TrainingRecipe {
        let classNames = labels.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
            ?? (data.contains("fashion") && trainImages == nil ? fashionMNISTLabels : (0..<10).map(String.init))
        let modelSpec: ModelSpec
        if let spec {
            modelSpec = try ModelSpec.parse(json: try FileSystem.readFile(spec, limit: 1 << 20), source: spec)
        } else {
            guard let builtIn = ModelSpec.builtIn(model, input: imageShape, classes: classNames.count) else {
                throw CommandFailure.usage("unknown --model '\(model)' (built-in: \(ModelSpec.builtInNames.joined(separator: ", ")))")
            }
            modelSpec = builtIn
        }
        var recipe = TrainingRecipe(spec: modelSpec)
        recipe.epochs = epochs
        recipe.batchSize = batchSize
        recipe.seed = seed
        recipe.optimizer = optimizer
        recipe.learningRate = learningRate
        recipe.momentum = momentum
        recipe.nesterov = nesterov
        recipe.weightDecay = weightDecay
        recipe.schedule = schedule
        recipe.warmupSteps = warmupSteps
        recipe.clipNorm = clipNorm
        recipe.validationSplit = validationSplit
        recipe.labels = classNames
        recipe.normalization = InputNormalization(pixelScale: 1.0 / 255.0, mean: [0], std: [1])
        try recipe.validate()
        let network = try modelSpec.build(seed: seed)
        guard network.inputShape.reduce(1, *) == imageShape.reduce(1, *) else {
            throw CommandFailure.data("model input \(network.inputShape) does not fit \(imageShape) images")
        }
        guard network.outputShape == [classNames.count] else {
            throw CommandFailure.data("model gives \(network.outputShape) outputs per sample, but there are \(classNames.count) classes")
        }
        return recipe
    }

    /// The checkpoint to resume from: `resume` itself if it is a file; for a directory, the newest
    /// checkpoint that loads. A newer one that does not load (damaged on disk after it was written)
    /// is named on stderr and skipped, so one bad file does not strand a long run.
    func loadResumeCheckpoint(_ resume: String) throws -> (model: Model, path: String) {
        guard FileSystem.isDirectory(resume) else { return (try LoadedModel(path: resume).model, resume) }
        let candidates = CheckpointDirectory.checkpoints(in: resume)
        guard !candidates.isEmpty else {
            throw CommandFailure(description: "\(resume): no checkpoint-*.mkc to resume from", status: ExitStatus.noInput)
        }
        var firstFailure: Error?
        for path in candidates.reversed() {
            do {
                return (try LoadedModel(path: path).model, path)
            } catch {
                printError("skipping \(path): \(error)")
                firstFailure = firstFailure ?? error
            }
        }
        throw firstFailure!
    }

    func recipeOf(checkpoint: Model, path: String) throws -> TrainingRecipe {
        guard let state = checkpoint.training else { throw TrainerError.invalidCheckpoint(path: path, reason: "it is a model, not a training checkpoint") }
        return try TrainingRecipe(configuration: state.configuration, metadata: checkpoint.metadata, source: path)
    }
}

let fashionMNISTLabels = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

/// A live progress bar on a terminal; a line per epoch (and every 10% of one) otherwise.
final class ProgressReporter {
    let totalEpochs: Int
    let batchSize: Int
    let bar = ProgressBar()
    var isTerminal: Bool { bar.isTerminal }
    var lastReportedTenth = -1

    init(totalEpochs: Int, batchSize: Int) {
        self.totalEpochs = totalEpochs
        self.batchSize = batchSize
    }

    func handle(_ event: TrainerEvent) {
        switch event {
        case .step(let epoch, let step, let steps, let loss, let accuracy, let rate):
            let remaining = Double(steps - step) * Double(batchSize) / max(rate, 1)
            let text = "epoch \(epoch)/\(totalEpochs) \(step)/\(steps) loss \(formatted(loss, decimals: 4)) accuracy \(formatted(accuracy, decimals: 4)) \(Int(rate)) img/s"
            if isTerminal {
                bar.update(done: step, total: steps, text: text + " ETA \(Int(remaining)) s")
            } else {
                let tenth = step * 10 / max(steps, 1)
                if tenth != lastReportedTenth && tenth < 10 {
                    lastReportedTenth = tenth
                    print(text)
                }
            }
        case .epochFinished(let m):
            lastReportedTenth = -1
            bar.finish()
            var line = "epoch \(m.epoch)/\(totalEpochs): loss \(formatted(m.trainLoss, decimals: 4)), accuracy \(formatted(m.trainAccuracy, decimals: 4))"
            if let v = m.validationLoss, let a = m.validationAccuracy {
                line += ", validation loss \(formatted(v, decimals: 4)), validation accuracy \(formatted(a, decimals: 4))"
            }
            print(line + ", \(formatted(m.seconds, decimals: 1)) s")
        case .checkpointWritten(let path):
            if !isTerminal { print("checkpoint \(path)") }
        }
    }
}
