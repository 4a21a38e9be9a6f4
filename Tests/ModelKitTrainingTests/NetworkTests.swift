import ModelKitCore
import Testing
@testable import ModelKitTraining

@Suite struct NetworkTests {
    @Test func seedCNNHas93322Parameters() throws {
        let network = try Network.seedCNN(seed: 1)
        #expect(network.parameterCount == 93_322)
        #expect(network.outputShape == [10])
        #expect(network.parameters.map(\.name) == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                                    "conv3.weight", "conv3.bias", "dense1.weight", "dense1.bias",
                                                    "dense2.weight", "dense2.bias"])
        #expect(network.parameter(named: "conv2.weight")?.shape == [64, 3, 3, 32])
        #expect(network.parameter(named: "dense1.weight")?.shape == [64, 576])
        #expect(network.parameter(named: "conv1.bias")?.value.allSatisfy { $0 == 0 } == true)
        #expect(try Network.mlp(seed: 1).parameterCount == 101_770)
    }

    @Test func sameSeedSameWeightsDifferentSeedDifferent() throws {
        let a = try Network.seedCNN(seed: 7), b = try Network.seedCNN(seed: 7), c = try Network.seedCNN(seed: 8)
        #expect(a.parameters.map(\.value) == b.parameters.map(\.value))
        #expect(a.parameters[0].value != c.parameters[0].value)
    }

    @Test func exportedGraphFusesActivationsAndValidates() throws {
        let network = try Network.seedCNN(seed: 3)
        let graph = try network.graph()
        let analysis = try graph.analyze(inputShapes: ["input": Shape([2, 28, 28, 1])])
        #expect(analysis.values["probabilities"]?.shape == Shape([2, 10]))
        #expect(graph.parameterCount == 93_322)
        #expect(graph.nodes.map(\.operation.name) == ["Conv2D", "MaxPool2D", "Conv2D", "MaxPool2D", "Conv2D", "Flatten",
                                                      "Dense", "Dense", "Softmax"])
        let activations = graph.nodes.compactMap(\.operation.fusedActivation)
        #expect(activations == [.relu, .relu, .relu, .relu, .none])
        #expect(graph.initializers["conv3.weight"]?.floats == network.parameter(named: "conv3.weight")?.value)
        #expect(graph.inputs[0].shape == Shape([-1, 28, 28, 1]))
    }

    @Test func exportKeepsUnfusableLayersAsNodes() throws {
        // A ReLU read by two nodes cannot fold; BN and Dropout become nodes with their state.
        var rng = RandomGenerator(seed: 1)
        let network = Network(inputShape: [4, 4, 2], rng: rng)
        try network.add(Conv2D(name: "conv", inChannels: 2, outChannels: 2, kernel: (3, 3), padding: .same, rng: &rng))
        try network.add(BatchNormalization(name: "bn", channels: 2))
        let relu = try network.add(ReLU(name: "relu"))
        try network.add(Dropout(name: "drop", rate: 0.5))
        try network.add(Add(name: "add"), inputs: [relu, relu + 1])
        try network.add(GlobalAveragePool(name: "gap"))
        try network.add(Flatten(name: "flat"))
        try network.add(Dense(name: "fc", inFeatures: 2, outFeatures: 3, rng: &rng))
        let graph = try network.graph()
        #expect(graph.nodes.map(\.operation.name) == ["Conv2D", "BatchNormalization", "ReLU", "Dropout", "Add",
                                                      "GlobalAveragePool", "Flatten", "Dense", "Softmax"])
        #expect(graph.nodes[1].inputs == ["conv", "bn.scale", "bn.bias", "bn.running_mean", "bn.running_variance"])
        #expect(graph.nodes[4].inputs == ["relu", "drop"])
        let analysis = try graph.analyze(inputShapes: ["input": Shape([3, 4, 4, 2])])
        #expect(analysis.values["probabilities"]?.shape == Shape([3, 3]))
    }

    @Test func addRejectsBadWiring() throws {
        let network = Network(inputShape: [3], rng: RandomGenerator(seed: 1))
        #expect(throws: TrainingError.self) { try network.add(ReLU(name: "r"), inputs: [0]) }
        try network.add(ReLU(name: "r"))
        #expect(throws: TrainingError.self) { try network.add(ReLU(name: "r")) }
        #expect(throws: TrainingError.self) { try network.add(Add(name: "a"), inputs: [0]) }
        var rng = RandomGenerator(seed: 2)
        #expect(throws: TrainingError.self) { try network.add(Dense(name: "d", inFeatures: 4, outFeatures: 2, rng: &rng)) }
    }

    @Test func inferenceForwardMatchesTrainingForwardWithoutStochasticLayers() throws {
        let network = try Network.seedCNN(seed: 12)
        var rng = RandomGenerator(seed: 13)
        let x = Batch(shape: [3, 28, 28, 1], values: (0..<(3 * 784)).map { _ in rng.nextFloat() })
        let inference = try network.forward(x, training: false)
        let training = try network.forward(x, training: true)
        #expect(inference.shape == [3, 10])
        #expect(inference == training)
        let pool = try MaxPool2D(name: "p")
        let y = try pool.forward([GradientCheck.distinctInput([2, 4, 4, 3], seed: 14)], training: false, rng: &rng)
        #expect(y.shape == [2, 2, 2, 3])
    }

    @Test func inferenceModesDifferFromTraining() throws {
        let bn = try BatchNormalization(name: "bn", channels: 1, momentum: 0.5)
        var rng = RandomGenerator(seed: 1)
        let x = Batch(shape: [4, 1], values: [1, 2, 3, 6])
        let trained = try bn.forward([x], training: true, rng: &rng)
        #expect(abs(trained.values.reduce(0, +)) < 1e-5)  // Batch statistics: zero mean.
        #expect(bn.runningMean.value == [1.5])            // 0.5·0 + 0.5·3
        #expect(bn.runningVariance.value == [2.25])       // 0.5·1 + 0.5·3.5 (biased variance)
        let inferred = try bn.forward([x], training: false, rng: &rng)
        #expect(abs(inferred.values[0] - (1 - 1.5) / (2.25 + 1e-3).squareRoot()) < 1e-6)

        let drop = try Dropout(name: "d", rate: 0.5)
        let ones = Batch(shape: [1, 1000], values: [Float](repeating: 1, count: 1000))
        #expect(try drop.forward([ones], training: false, rng: &rng) == ones)
        let masked = try drop.forward([ones], training: true, rng: &rng)
        let kept = masked.values.filter { $0 == 2 }.count
        #expect(kept > 400 && kept < 600 && masked.values.allSatisfy { $0 == 0 || $0 == 2 })
    }
}

@Suite struct TrainingRunTests {
    /// Two Gaussian blobs in 2-D; an MLP with dropout trained by Adam must separate them.
    func blobs(_ count: Int, seed: UInt64) -> (Batch, [Int32]) {
        var rng = RandomGenerator(seed: seed)
        var values: [Float] = [], labels: [Int32] = []
        for i in 0..<count {
            let label = Int32(i % 2)
            let center: Float = label == 0 ? -1 : 1
            values += [center + rng.nextFloat(in: -0.8, 0.8), -center + rng.nextFloat(in: -0.8, 0.8)]
            labels.append(label)
        }
        return (Batch(shape: [count, 2], values: values), labels)
    }

    func train(seed: UInt64, steps: Int) throws -> (first: Float, last: Float, network: Network) {
        var rng = RandomGenerator(seed: seed)
        let network = Network(inputShape: [2], rng: rng)
        try network.add(Dense(name: "d1", inFeatures: 2, outFeatures: 16, rng: &rng))
        try network.add(ReLU(name: "r1"))
        try network.add(Dropout(name: "drop", rate: 0.1))
        try network.add(Dense(name: "d2", inFeatures: 16, outFeatures: 2, rng: &rng))
        let optimizer = Adam(learningRate: 0.02)
        let (x, y) = blobs(64, seed: 11)
        var first: Float = 0, last: Float = 0
        for step in 0..<steps {
            let result = try SoftmaxCrossEntropy.compute(logits: network.forward(x, training: true), labels: y)
            try network.backward(result.gradient)
            try optimizer.step(network.trainableParameters)
            if step == 0 { first = result.loss }
            last = result.loss
        }
        return (first, last, network)
    }

    @Test func lossDropsOnToyProblem() throws {
        let run = try train(seed: 5, steps: 150)
        #expect(run.first > 0.4)
        #expect(run.last < run.first * 0.3)
        let (x, y) = blobs(200, seed: 12)
        let result = try SoftmaxCrossEntropy.compute(logits: run.network.forward(x, training: false), labels: y)
        #expect(result.correct >= 190)
    }

    @Test func trainingIsExactlyReproducible() throws {
        let a = try train(seed: 9, steps: 20), b = try train(seed: 9, steps: 20)
        #expect(a.last == b.last)
        #expect(a.network.parameters.map(\.value) == b.network.parameters.map(\.value))
        #expect(a.network.rng.stateWords == b.network.rng.stateWords)
    }

    @Test func seedCNNStepReducesLossOnAFixedBatch() throws {
        let network = try Network.seedCNN(seed: 2, inputShape: [20, 20, 1], classes: 3)
        var rng = RandomGenerator(seed: 4)
        let x = Batch(shape: [6, 20, 20, 1], values: (0..<(6 * 400)).map { _ in rng.nextFloat() })
        let labels: [Int32] = [0, 1, 2, 0, 1, 2]
        let optimizer = Adam(learningRate: 3e-3)
        var losses: [Float] = []
        for _ in 0..<15 {
            let result = try SoftmaxCrossEntropy.compute(logits: network.forward(x, training: true), labels: labels)
            losses.append(result.loss)
            try network.backward(result.gradient)
            try optimizer.step(network.trainableParameters)
        }
        #expect(losses.last! < losses.first! * 0.5, "losses \(losses)")
    }
}
