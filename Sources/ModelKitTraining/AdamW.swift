import ModelKitCore

/// Adam with decoupled weight decay (Loshchilov & Hutter, Keras form): before the Adam step,
/// w ← w − lr·weightDecay·w, independent of the gradient. Keras's default weightDecay is 0.004.
public final class AdamW: Optimizer {
    public let name = "adamw"
    public var options: OptimizerOptions
    public private(set) var beta1: Float, beta2: Float, epsilon: Float
    public private(set) var weightDecay: Float
    public private(set) var iterations: Int64 = 0
    private var store = SlotStore()

    public convenience init(learningRate: Float = 1e-3, weightDecay: Float = 0.004, beta1: Float = 0.9,
                            beta2: Float = 0.999, epsilon: Float = 1e-7) {
        self.init(options: OptimizerOptions(schedule: .constant(learningRate)), weightDecay: weightDecay, beta1: beta1,
                  beta2: beta2, epsilon: epsilon)
    }

    public init(options: OptimizerOptions, weightDecay: Float = 0.004, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-7) {
        self.options = options
        self.weightDecay = weightDecay
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    public func step(_ parameters: [Parameter]) throws {
        try AdamMath.update(parameters, options: options, beta1: beta1, beta2: beta2, epsilon: epsilon,
                            decoupledDecay: weightDecay, iterations: iterations, store: &store)
        iterations += 1
    }

    public func exportState() -> OptimizerState {
        AdamMath.export(name: name, options: options, beta1: beta1, beta2: beta2, epsilon: epsilon,
                        decoupledDecay: weightDecay, iterations: iterations, store: store)
    }

    public func importState(_ state: OptimizerState) throws {
        let (restored, restoredOptions) = try SlotStore.restore(state, expectedName: name)
        store = restored
        if let restoredOptions { options = restoredOptions }
        (beta1, beta2, epsilon) = AdamMath.restoreBetas(state, (beta1, beta2, epsilon))
        if let decay = state.hyperparameters["weight_decay"] { weightDecay = Float(decay) }
        iterations = state.step
    }
}
