import ModelKitCore
import Testing
@testable import ModelKitTraining

@Suite struct OptimizerTests {
    /// Two steps on w = [1, -2] with gradients [0.5, 0.1] then [-0.25, 0.3].
    func run(_ optimizer: any Optimizer) throws -> [Float] {
        let w = Parameter(name: "w", shape: [2], value: [1, -2])
        for gradient in [[Float(0.5), 0.1], [-0.25, 0.3]] {
            w.gradient = gradient
            try optimizer.step([w])
        }
        return w.value
    }

    func expectClose(_ a: [Float], _ b: [Double], _ tolerance: Double = 2e-6,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.count == b.count, sourceLocation: sourceLocation)
        for (x, y) in zip(a, b) {
            #expect(abs(Double(x) - y) <= tolerance, "\(a) vs \(b)", sourceLocation: sourceLocation)
        }
    }

    // Expected values computed by hand from the Keras update formulas (in float64).
    @Test func adamMatchesKeras() throws {
        expectClose(try run(Adam(learningRate: 1e-3)), [0.99873367, -2.00191774])
    }

    @Test func adamWDecouplesDecay() throws {
        expectClose(try run(AdamW(learningRate: 0.01, weightDecay: 0.1)), [0.98534771, -2.0151694])
    }

    @Test func sgdMomentumAndNesterov() throws {
        expectClose(try run(SGD(learningRate: 0.1, momentum: 0.9)), [0.93, -2.049])
        expectClose(try run(SGD(learningRate: 0.1, momentum: 0.9, nesterov: true)), [0.912, -2.0841])
        expectClose(try run(SGD(learningRate: 0.1)), [0.975, -2.04])
    }

    @Test func l2WeightDecayAddsToGradient() throws {
        // g' = g + 0.5·w: step 1 [1, -0.9] -> w [0.9, -1.91]; step 2 [0.2, -0.655] -> [0.88, -1.8445].
        let sgd = SGD(options: OptimizerOptions(schedule: .constant(0.1), weightDecay: 0.5))
        expectClose(try run(sgd), [0.88, -1.8445])
    }

    @Test func globalNormClipping() throws {
        let a = Parameter(name: "a", shape: [1], value: [0]), b = Parameter(name: "b", shape: [1], value: [0])
        a.gradient = [3]
        b.gradient = [4]
        let sgd = SGD(options: OptimizerOptions(schedule: .constant(1), clipNorm: 1))
        try sgd.step([a, b])
        expectClose(a.value + b.value, [-0.6, -0.8])
    }

    @Test func nonTrainableParametersAreLeftAlone() throws {
        let state = Parameter(name: "bn.running_mean", shape: [1], value: [5], isTrainable: false)
        state.gradient = [1]
        try Adam().step([state])
        #expect(state.value == [5])
    }

    @Test func schedules() {
        #expect(LearningRateSchedule.constant(0.1).rate(at: 1000) == 0.1)
        let step = LearningRateSchedule.step(initial: 1, decayRate: 0.5, stepSize: 10)
        #expect(step.rate(at: 9) == 1 && step.rate(at: 10) == 0.5 && step.rate(at: 25) == 0.25)
        let cosine = LearningRateSchedule.cosine(initial: 1, decaySteps: 100, minimumFactor: 0.1)
        #expect(cosine.rate(at: 0) == 1)
        #expect(abs(cosine.rate(at: 50) - 0.55) < 1e-6)
        #expect(abs(cosine.rate(at: 100) - 0.1) < 1e-6 && abs(cosine.rate(at: 500) - 0.1) < 1e-6)
        let warm = LearningRateSchedule.warmup(steps: 4, then: .constant(0.8))
        #expect(warm.rate(at: 0) == 0.2 && warm.rate(at: 3) == 0.8 && warm.rate(at: 10) == 0.8)
    }

    @Test(arguments: ["adam", "adamw", "sgd"])
    func stateRoundTripResumesExactly(kind: String) throws {
        func make() -> any Optimizer {
            let options = OptimizerOptions(schedule: .warmup(steps: 2, then: .cosine(initial: 0.01, decaySteps: 10,
                                                                                     minimumFactor: 0)),
                                           clipNorm: 5)
            switch kind {
            case "adam": return Adam(options: options)
            case "adamw": return AdamW(options: options, weightDecay: 0.01)
            default: return SGD(options: options, momentum: 0.9, nesterov: true)
            }
        }
        var rng = RandomGenerator(seed: 3)
        let gradients = (0..<5).map { _ in (0..<6).map { _ in rng.nextFloat(in: -1, 1) } }
        let reference = make()
        let w = Parameter(name: "w", shape: [2, 3], value: [1, 2, 3, 4, 5, 6])
        var saved: (OptimizerState, [Float])?
        for (index, gradient) in gradients.enumerated() {
            if index == 3 { saved = (reference.exportState(), w.value) }
            w.gradient = gradient
            try reference.step([w])
        }
        // A fresh optimizer with default options, resumed from the step-3 state.
        let resumed: any Optimizer
        switch kind {
        case "adam": resumed = Adam()
        case "adamw": resumed = AdamW()
        default: resumed = SGD()
        }
        try resumed.importState(saved!.0)
        #expect(resumed.iterations == 3)
        let w2 = Parameter(name: "w", shape: [2, 3], value: saved!.1)
        for gradient in gradients[3...] {
            w2.gradient = gradient
            try resumed.step([w2])
        }
        #expect(w2.value == w.value)
        #expect(resumed.exportState() == reference.exportState())
    }

    @Test func importRejectsMismatches() throws {
        let adam = Adam()
        #expect(throws: TrainingError.self) { try adam.importState(SGD().exportState()) }
        let w = Parameter(name: "w", shape: [2], value: [1, 2])
        w.gradient = [1, 1]
        try adam.step([w])
        let other = Adam()
        try other.importState(adam.exportState())
        let wrongSize = Parameter(name: "w", shape: [3], value: [1, 2, 3])
        #expect(throws: TrainingError.self) { try other.step([wrongSize]) }
    }
}
