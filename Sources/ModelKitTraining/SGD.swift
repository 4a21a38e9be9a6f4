import ModelKitCore

/// Stochastic gradient descent, Keras form: with momentum μ, v ← μ·v − lr·g and w ← w + v
/// (Nesterov: w ← w + μ·v − lr·g); without momentum, w ← w − lr·g. Slot "momentum".
public final class SGD: Optimizer {
    public let name = "sgd"
    public var options: OptimizerOptions
    public private(set) var momentum: Float
    public private(set) var nesterov: Bool
    public private(set) var iterations: Int64 = 0
    private var store = SlotStore()

    public convenience init(learningRate: Float = 0.01, momentum: Float = 0, nesterov: Bool = false) {
        self.init(options: OptimizerOptions(schedule: .constant(learningRate)), momentum: momentum, nesterov: nesterov)
    }

    public init(options: OptimizerOptions, momentum: Float = 0, nesterov: Bool = false) {
        self.options = options
        self.momentum = momentum
        self.nesterov = nesterov
    }

    public func step(_ parameters: [Parameter]) throws {
        let lr = options.schedule.rate(at: iterations)
        let clip = options.clipScale(parameters)
        let l2 = options.weightDecay
        let mu = momentum
        for parameter in parameters where parameter.isTrainable {
            if mu == 0 {
                parameter.value.withUnsafeMutableBufferPointer { w in
                    parameter.gradient.withUnsafeBufferPointer { g in
                        for i in 0..<w.count { w[i] -= lr * (g[i] * clip + l2 * w[i]) }
                    }
                }
                continue
            }
            var velocity = try store.take("momentum", for: parameter)
            let nesterov = self.nesterov
            parameter.value.withUnsafeMutableBufferPointer { w in
                parameter.gradient.withUnsafeBufferPointer { g in
                    velocity.withUnsafeMutableBufferPointer { v in
                        for i in 0..<w.count {
                            let grad = g[i] * clip + l2 * w[i]
                            v[i] = mu * v[i] - lr * grad
                            w[i] += nesterov ? mu * v[i] - lr * grad : v[i]
                        }
                    }
                }
            }
            store.put("momentum", for: parameter, velocity)
        }
        iterations += 1
    }

    public func exportState() -> OptimizerState {
        var values: [String: Double] = ["momentum": Double(momentum), "nesterov": nesterov ? 1 : 0]
        options.encode(into: &values)
        return store.export(name: name, hyperparameters: values, step: iterations)
    }

    public func importState(_ state: OptimizerState) throws {
        let (restored, restoredOptions) = try SlotStore.restore(state, expectedName: name)
        store = restored
        if let momentum = state.hyperparameters["momentum"] { self.momentum = Float(momentum) }
        if let nesterov = state.hyperparameters["nesterov"] { self.nesterov = nesterov != 0 }
        if let restoredOptions { options = restoredOptions }
        iterations = state.step
    }
}
