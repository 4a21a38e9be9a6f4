import ModelKitCore

/// Inverted dropout: in training each element is kept with probability 1 − rate and scaled by
/// 1/(1 − rate), the mask drawn from the network's generator; identity in inference.
public final class Dropout: UnaryLayer {
    public let name: String
    public let rate: Float
    private var savedMask: [Float]?

    public init(name: String, rate: Float) throws {
        guard rate >= 0, rate < 1 else {
            throw TrainingError.invalidConfiguration(layer: name, reason: "rate \(rate) must be in [0, 1)")
        }
        self.name = name
        self.rate = rate
    }

    public func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }

    public func forward(_ input: Batch, training: Bool, rng: inout RandomGenerator) throws -> Batch {
        guard training else {
            savedMask = nil
            return input
        }
        let keep = 1 / (1 - rate)
        var mask = [Float](repeating: 0, count: input.count)
        for i in 0..<mask.count where rng.nextFloat() >= rate { mask[i] = keep }
        savedMask = mask
        return Batch.uninitialized(input.shape) { out in
            for i in 0..<mask.count { out[i] = input.values[i] * mask[i] }
        }
    }

    public func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch? {
        guard needInputGradient else { return nil }
        guard let mask = savedMask else { throw TrainingError.backwardBeforeForward(layer: name) }
        guard mask.count == outputGradient.count else {
            throw TrainingError.shapeMismatch(layer: name, reason: "gradient \(outputGradient.shape) vs saved mask")
        }
        return Batch.uninitialized(outputGradient.shape) { out in
            for i in 0..<mask.count { out[i] = outputGradient.values[i] * mask[i] }
        }
    }

    public func export() throws -> LayerExport { LayerExport(operation: .dropout(rate: rate)) }
}
