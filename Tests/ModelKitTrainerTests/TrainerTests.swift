import Foundation
import ModelKitCore
import ModelKitFormat
import ModelKitTrainer
import ModelKitTraining
import Testing
@_exported import ModelKitTestSupport

/// 8×8 one-channel images whose class is which quadrant is brightest, with noise.
func quadrantData(count: Int, seed: UInt64) -> TrainingData {
    var rng = RandomGenerator(seed: seed)
    var samples: [Float] = []
    var labels: [Int32] = []
    for _ in 0..<count {
        let label = rng.nextInt(below: 4)
        for y in 0..<8 {
            for x in 0..<8 {
                let quadrant = (y / 4) * 2 + (x / 4)
                samples.append((quadrant == label ? 0.8 : 0.2) + rng.nextFloat(in: -0.15, 0.15))
            }
        }
        labels.append(Int32(label))
    }
    return TrainingData(samples: samples, labels: labels, sampleShape: [8, 8, 1])
}

/// A small net with every source of state a resume must restore: BatchNorm statistics,
/// Dropout's generator, Adam's slots, and the shuffle order.
func smallSpec() -> ModelSpec {
    ModelSpec(input: [8, 8, 1], layers: [
        .init(type: "conv2d", filters: 4, kernel: 3, padding: "same"),
        .init(type: "batchnorm"),
        .init(type: "relu"),
        .init(type: "maxpool2d", pool: 2),
        .init(type: "residual", layers: [.init(type: "conv2d", filters: 4, kernel: 3, padding: "same", activation: "relu")]),
        .init(type: "flatten"),
        .init(type: "dropout", rate: 0.25),
        .init(type: "dense", units: 4),
    ])
}


struct TrainerTests {
    @Test func resumingFromAMidEpochCheckpointReproducesTheUninterruptedRun() throws {
        let data = quadrantData(count: 120, seed: 7)
        var recipe = TrainingRecipe(spec: smallSpec())
        recipe.epochs = 3
        recipe.batchSize = 16
        recipe.seed = 42
        recipe.labels = ["a", "b", "c", "d"]

        let directoryA = try temporaryDirectory()
        let uninterrupted = try Trainer(recipe: recipe, trainingCount: data.count)
        var lossesA: [Double] = []
        try uninterrupted.run(training: data, validation: nil,
                              policy: CheckpointPolicy(directory: directoryA, everySteps: 5, keepLast: 100)) { event in
            if case .step(_, _, _, let loss, _, _) = event { lossesA.append(loss) }
        }
        #expect(lossesA.count == 24)  // 3 epochs of ceil(120/16) = 8 steps

        // Step 10 is in the middle of epoch 2.
        let checkpointPath = directoryA + "/checkpoint-e001-s0000010.mkc"
        let checkpoint = try ModelFile.read(path: checkpointPath)
        #expect(checkpoint.training?.stepInEpoch == 2)
        let resumed = try Trainer(resuming: checkpoint, source: checkpointPath, trainingCount: data.count)
        var lossesB: [Double] = []
        try resumed.run(training: data, validation: nil,
                        policy: CheckpointPolicy(directory: try temporaryDirectory(), everySteps: 0)) { event in
            if case .step(_, _, _, let loss, _, _) = event { lossesB.append(loss) }
        }
        #expect(lossesB == Array(lossesA[10...]))
        let finalA = try uninterrupted.checkpoint()
        let finalB = try resumed.checkpoint()
        #expect(finalA.graph.initializers == finalB.graph.initializers)
        #expect(finalA.training?.optimizer == finalB.training?.optimizer)
        #expect(finalA.training?.metricsHistory.map(\.trainLoss) == finalB.training?.metricsHistory.map(\.trainLoss))
        #expect(finalA.training?.rngState == finalB.training?.rngState)
    }

    @Test func keepsTheLastKCheckpointsAndTheBest() throws {
        let data = quadrantData(count: 64, seed: 1)
        var recipe = TrainingRecipe(spec: smallSpec())
        recipe.epochs = 2
        recipe.batchSize = 16
        let directory = try temporaryDirectory()
        try Trainer(recipe: recipe, trainingCount: data.count)
            .run(training: data, validation: nil, policy: CheckpointPolicy(directory: directory, everySteps: 1, keepLast: 2)) { _ in }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(names == ["best.mkc", "checkpoint-e001-s0000007.mkc", "checkpoint-e002-s0000008.mkc"])
        #expect(CheckpointDirectory.latest(in: directory) == directory + "/checkpoint-e002-s0000008.mkc")
    }

    @Test func learnsTheToyProblemAndExportsARunnableGraph() throws {
        let data = quadrantData(count: 400, seed: 3)
        var recipe = TrainingRecipe(spec: smallSpec())
        recipe.epochs = 4
        recipe.batchSize = 20
        recipe.learningRate = 3e-3
        let trainer = try Trainer(recipe: recipe, trainingCount: data.count)
        let validation = quadrantData(count: 100, seed: 4)
        try trainer.run(training: data, validation: validation, policy: nil) { _ in }
        let last = try #require(trainer.metricsHistory.last)
        #expect(last.validationAccuracy ?? 0 > 0.9)
        #expect(trainer.metricsHistory.first!.trainLoss > last.trainLoss)
        // The checkpoint is a valid file: it encodes, and the reader's validation accepts it.
        let bytes = try ModelFile.encode(try trainer.checkpoint())
        #expect(try ModelFile.decode(bytes).kind == .checkpoint)
    }

    @Test func seedCNNHasTheReferenceParameterCount() throws {
        #expect(try ModelSpec.seedCNN().build(seed: 0).parameterCount == 93_322)
        #expect(try ModelSpec.mlp().build(seed: 0).parameterCount == 101_770)
    }

    @Test func specErrorsNameTheLayer() throws {
        let unknown = Array(#"{"input": [28, 28, 1], "layers": [{"type": "conv2d", "filters": 8, "kernel": 3}, {"type": "lstm"}]}"#.utf8)
        #expect(throws: TrainerError.self) { try ModelSpec.parse(json: unknown, source: "s.json").build(seed: 0) }
        do {
            _ = try ModelSpec.parse(json: unknown, source: "s.json").build(seed: 0)
        } catch {
            #expect("\(error)".contains("layers[1]") && "\(error)".contains("lstm"))
        }
        let denseOnImage = Array(#"{"input": [28, 28, 1], "layers": [{"type": "dense", "units": 10}]}"#.utf8)
        #expect(throws: TrainerError.self) { try ModelSpec.parse(json: denseOnImage, source: "s.json").build(seed: 0) }
        let badResidual = Array(#"{"input": [8, 8, 1], "layers": [{"type": "residual", "layers": [{"type": "conv2d", "filters": 4, "kernel": 3}]}]}"#.utf8)
        #expect(throws: TrainerError.self) { try ModelSpec.parse(json: badResidual, source: "s.json").build(seed: 0) }
        let notJSON = Array("{input: ".utf8)
        #expect(throws: TrainerError.self) { try ModelSpec.parse(json: notJSON, source: "s.json") }
    }

    @Test func resumeRejectsAModelFile() throws {
        let model = Model(graph: try ModelSpec.mlp().build(seed: 0).graph())
        #expect(throws: TrainerError.self) { try Trainer(resuming: model, source: "m.mkm", trainingCount: 10) }
    }
}
