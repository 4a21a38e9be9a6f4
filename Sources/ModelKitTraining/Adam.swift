import CModelKitKernels
import ModelKitCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Adam with Keras's update (the paper's "ε̂" form): at step t (1-based)
///   m ← m + (1−β1)(g − m),  v ← v + (1−β2)(g² − v),
///   w ← w − lr·√(1−β2ᵗ)/(1−β1ᵗ) · m / (√v + ε).
/// Slots "m" and "v". Defaults are Keras's (lr 1e-3, β1 0.9, β2 0.999, ε 1e-7).
public final class Adam: Optimizer {
    public let name = "adam"
    public var options: OptimizerOptions
    public private(set) var beta1: Float, beta2: Float, epsilon: Float
    public private(set) var iterations: Int64 = 0
    var store = SlotStore()

    public convenience init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7) {
        self.init(options: OptimizerOptions(schedule: .constant(learningRate)), beta1: beta1, beta2: beta2, epsilon: epsilon)
    }

    public init(options: OptimizerOptions, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7) {
        self.options = options
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    public func step(_ parameters: [Parameter]) throws {
        try AdamMath.update(parameters, options: options, beta1: beta1, beta2: beta2, epsilon: epsilon,
                            decoupledDecay: 0, iterations: iterations, store: &store)
        iterations += 1
    }

    public func exportState() -> OptimizerState {
        AdamMath.export(name: name, options: options, beta1: beta1, beta2: beta2, epsilon: epsilon, decoupledDecay: nil,
                        iterations: iterations, store: store)
    }

    public func importState(_ state: OptimizerState) throws {
        let (restored, restoredOptions) = try SlotStore.restore(state, expectedName: name)
        store = restored
        if let restoredOptions { options = restoredOptions }
        (beta1, beta2, epsilon) = AdamMath.restoreBetas(state, (beta1, beta2, epsilon))
        iterations = state.step
    }
}

/// The update shared by Adam and AdamW.
enum AdamMath {
    static func update(_ parameters: [Parameter], options: OptimizerOptions, beta1: Float, beta2: Float,
                       epsilon: Float, decoupledDecay: Float, iterations: Int64, store: inout SlotStore) throws {
        let lr = options.schedule.rate(at: iterations)
        let t = Double(iterations + 1)
        let alpha = Float(Double(lr) * (1 - pow(Double(beta2), t)).squareRoot() / (1 - pow(Double(beta1), t)))
        let decay = lr * decoupledDecay
        let clip = options.clipScale(parameters)
        let l2 = options.weightDecay
        let (oneMinusB1, oneMinusB2) = (1 - beta1, 1 - beta2)
        for parameter in parameters where parameter.isTrainable {
            var m = try store.take("m", for: parameter)
            var v = try store.take("v", for: parameter)
            // The C loop computes exactly this scalar formula (no FMA contraction), vectorised:
            //   w -= decay·w; g' = g·clip + l2·w; m += (g' − m)(1−β1); v += (g'² − v)(1−β2);
            //   w -= alpha·m / (√v + ε)
            parameter.value.withUnsafeMutableBufferPointer { w in
                parameter.gradient.withUnsafeBufferPointer { g in
                    m.withUnsafeMutableBufferPointer { m in
                        v.withUnsafeMutableBufferPointer { v in
                            precondition(g.count == w.count, "\(parameter.name): gradient size differs from value")
                            // Elementwise, so splitting large tensors across threads changes no result.
                            let count = w.count
                            let parts = count >= 16_384 ? Parallelism.threadCount : 1
                            guard count > 0 else { return }
                            let (wp, gp) = (SendablePointer(pointer: w.baseAddress!),
                                            SendableConstPointer(pointer: g.baseAddress!))
                            let (mp, vp) = (SendablePointer(pointer: m.baseAddress!),
                                            SendablePointer(pointer: v.baseAddress!))
                            Parallelism.run(parts) { part in
                                let range = Elementwise.chunk(count, parts, part)
                                let i = range.lowerBound
                                mk_adam_update(range.count, wp.pointer + i, gp.pointer + i, mp.pointer + i,
                                               vp.pointer + i, clip, l2, decay, oneMinusB1, oneMinusB2, alpha, epsilon)
                            }
                        }
                    }
                }
            }
            store.put("m", for: parameter, m)
            store.put("v", for: parameter, v)
        }
    }

    static func restoreBetas(_ state: OptimizerState, _ current: (Float, Float, Float)) -> (Float, Float, Float) {
        let h = state.hyperparameters
        return (h["beta_1"].map { Float($0) } ?? current.0, h["beta_2"].map { Float($0) } ?? current.1,
                h["epsilon"].map { Float($0) } ?? current.2)
    }

    static func export(name: String, options: OptimizerOptions, beta1: Float, beta2: Float, epsilon: Float,
                       decoupledDecay: Float?, iterations: Int64, store: SlotStore) -> OptimizerState {
        var values: [String: Double] = ["beta_1": Double(beta1), "beta_2": Double(beta2), "epsilon": Double(epsilon)]
        if let decoupledDecay { values["weight_decay"] = Double(decoupledDecay) }
        options.encode(into: &values)
        return store.export(name: name, hyperparameters: values, step: iterations)
    }
}
