import ModelKitCore

/// Options every optimizer shares.
public struct OptimizerOptions: Hashable, Sendable {
    public var schedule: LearningRateSchedule
    /// Plain L2 regularisation: weightDecay·w is added to each gradient before the update.
    public var weightDecay: Float
    /// When set, all gradients are scaled together so their global L2 norm is at most this.
    public var clipNorm: Float?

    public init(schedule: LearningRateSchedule, weightDecay: Float = 0, clipNorm: Float? = nil) {
        self.schedule = schedule
        self.weightDecay = weightDecay
        self.clipNorm = clipNorm
    }
}

/// Updates trainable parameters from their gradients. State (slots keyed "<slot>/<parameter>",
/// and the step count) round-trips through `OptimizerState` so a checkpoint resumes exactly.
public protocol Optimizer: AnyObject {
    var name: String { get }
    var options: OptimizerOptions { get set }
    /// Updates taken so far.
    var iterations: Int64 { get }
    /// One update of every trainable parameter in `parameters` (non-trainable ones are skipped).
    func step(_ parameters: [Parameter]) throws
    func exportState() -> OptimizerState
    func importState(_ state: OptimizerState) throws
}

/// Slot storage and the gradient preprocessing (clipping, L2) shared by the optimizers.
struct SlotStore {
    var slots: [String: [Float]] = [:]

    /// The slot array for `parameter`, created as zeros; throws if a restored slot has the wrong size.
    mutating func take(_ slot: String, for parameter: Parameter) throws -> [Float] {
        let key = "\(slot)/\(parameter.name)"
        guard let existing = slots.removeValue(forKey: key) else {
            return [Float](repeating: 0, count: parameter.count)
        }
        guard existing.count == parameter.count else {
            throw TrainingError.optimizerStateMismatch(
                reason: "slot \(key) has \(existing.count) values, parameter has \(parameter.count)")
        }
        return existing
    }

    mutating func put(_ slot: String, for parameter: Parameter, _ values: [Float]) {
        slots["\(slot)/\(parameter.name)"] = values
    }

    func export(name: String, hyperparameters: [String: Double], step: Int64) -> OptimizerState {
        OptimizerState(name: name, hyperparameters: hyperparameters, step: step,
                       slots: slots.mapValues { Tensor(shape: Shape([$0.count]), floats: $0) })
    }

    static func restore(_ state: OptimizerState, expectedName: String) throws -> (SlotStore, OptimizerOptions?) {
        guard state.name == expectedName else {
            throw TrainingError.optimizerStateMismatch(reason: "state is for '\(state.name)', optimizer is '\(expectedName)'")
        }
        guard state.step >= 0 else { throw TrainingError.optimizerStateMismatch(reason: "negative step \(state.step)") }
        var store = SlotStore()
        for (key, tensor) in state.slots {
            guard let values = tensor.floats else {
                throw TrainingError.optimizerStateMismatch(reason: "slot \(key) is \(tensor.dtype), expected float32")
            }
            store.slots[key] = values
        }
        var options: OptimizerOptions?
        if state.hyperparameters["lr.kind"] != nil {
            let schedule = try LearningRateSchedule.decode(state.hyperparameters)
            let clip = state.hyperparameters["clip_norm"].map { Float($0) }
            options = OptimizerOptions(schedule: schedule, weightDecay: Float(state.hyperparameters["l2"] ?? 0),
                                       clipNorm: clip)
        }
        return (store, options)
    }
}

extension OptimizerOptions {
    func encode(into values: inout [String: Double]) {
        schedule.encode(into: &values)
        values["l2"] = Double(weightDecay)
        if let clipNorm { values["clip_norm"] = Double(clipNorm) }
    }

    /// Factor applied to every gradient for global-norm clipping (1 when off or under the limit).
    func clipScale(_ parameters: [Parameter]) -> Float {
        guard let clipNorm, clipNorm > 0 else { return 1 }
        var total = 0.0
        for parameter in parameters where parameter.isTrainable {
            parameter.gradient.withUnsafeBufferPointer { g in
                for value in g { total += Double(value) * Double(value) }
            }
        }
        let norm = total.squareRoot()
        return norm > Double(clipNorm) ? Float(Double(clipNorm) / norm) : 1
    }
}
