import ModelKitCore

/// Batch normalisation over the last (channel) axis, Keras semantics: training normalises with
/// the batch mean and biased variance and updates running = momentum·running + (1−momentum)·batch;
/// inference uses the running statistics. Parameters: gamma ("<name>.scale"), beta ("<name>.bias");
/// state: "<name>.running_mean", "<name>.running_variance" (not trainable).
public final class BatchNormalization: UnaryLayer {
    public let name: String
    public let channels: Int
    public let momentum: Float
    public let epsilon: Float
    public let scale: Parameter
    public let bias: Parameter
    public let runningMean: Parameter
    public let runningVariance: Parameter

    private struct Saved {
        var normalized: [Float]
        var inverseStd: [Float]
        var shape: [Int]
        var training: Bool
    }
    private var saved: Saved?

    public init(name: String, channels: Int, momentum: Float = 0.99, epsilon: Float = 1e-3) throws {
        guard channels >= 1 else { throw TrainingError.invalidConfiguration(layer: name, reason: "channels must be >= 1") }
        guard momentum >= 0, momentum <= 1, epsilon > 0, epsilon.isFinite else {
            throw TrainingError.invalidConfiguration(layer: name, reason: "momentum must be in [0,1] and epsilon > 0")
        }
        self.name = name
        self.channels = channels
        self.momentum = momentum
        self.epsilon = epsilon
        scale = Parameter(name: "\(name).scale", shape: [channels], value: [Float](repeating: 1, count: channels))
        bias = Parameter(name: "\(name).bias", shape: [channels], value: [Float](repeating: 0, count: channels))
        runningMean = Parameter(name: "\(name).running_mean", shape: [channels],
                                value: [Float](repeating: 0, count: channels), isTrainable: false)
        runningVariance = Parameter(name: "\(name).running_variance", shape: [channels],
                                    value: [Float](repeating: 1, count: channels), isTrainable: false)
    }

    public var parameters: [Parameter] { [scale, bias, runningMean, runningVariance] }

    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.last == channels else {
            throw TrainingError.shapeMismatch(layer: name, reason: "expected \(channels) channels, got \(inputShape)")
        }
        return inputShape
    }

    public func forward(_ input: Batch, training: Bool, rng: inout RandomGenerator) throws -> Batch {
        guard input.shape.count >= 2, input.shape.last == channels else {
            throw TrainingError.shapeMismatch(layer: name, reason: "expected [..., \(channels)], got \(input.shape)")
        }
        let c = channels
        let rows = input.count / c
        var mean = [Float](repeating: 0, count: c)
        var variance = [Float](repeating: 0, count: c)
        if training {
            guard rows >= 1 else { throw TrainingError.shapeMismatch(layer: name, reason: "empty batch") }
            var sum = [Double](repeating: 0, count: c), squares = [Double](repeating: 0, count: c)
            input.values.withUnsafeBufferPointer { x in
                for r in 0..<rows { for ch in 0..<c { sum[ch] += Double(x[r * c + ch]) } }
                for ch in 0..<c { mean[ch] = Float(sum[ch] / Double(rows)) }
                for r in 0..<rows {
                    for ch in 0..<c {
                        let d = Double(x[r * c + ch]) - Double(mean[ch])
                        squares[ch] += d * d
                    }
                }
            }
            for ch in 0..<c {
                variance[ch] = Float(squares[ch] / Double(rows))
                runningMean.value[ch] = momentum * runningMean.value[ch] + (1 - momentum) * mean[ch]
                runningVariance.value[ch] = momentum * runningVariance.value[ch] + (1 - momentum) * variance[ch]
            }
        } else {
            mean = runningMean.value
            variance = runningVariance.value
        }
        let inverseStd = variance.map { 1 / ($0 + epsilon).squareRoot() }
        var normalized = [Float](repeating: 0, count: input.count)
        let output = Batch.uninitialized(input.shape) { out in
            input.values.withUnsafeBufferPointer { x in
                for r in 0..<rows {
                    for ch in 0..<c {
                        let xhat = (x[r * c + ch] - mean[ch]) * inverseStd[ch]
                        normalized[r * c + ch] = xhat
                        out[r * c + ch] = scale.value[ch] * xhat + bias.value[ch]
                    }
                }
            }
        }
        saved = Saved(normalized: normalized, inverseStd: inverseStd, shape: input.shape, training: training)
        return output
    }

    public func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch? {
        guard let saved else { throw TrainingError.backwardBeforeForward(layer: name) }
        try Check.same(outputGradient.shape, saved.shape, name, "output gradient")
        let c = channels
        let rows = outputGradient.count / c
        var sumDy = [Double](repeating: 0, count: c), sumDyXhat = [Double](repeating: 0, count: c)
        outputGradient.values.withUnsafeBufferPointer { dy in
            for r in 0..<rows {
                for ch in 0..<c {
                    sumDy[ch] += Double(dy[r * c + ch])
                    sumDyXhat[ch] += Double(dy[r * c + ch]) * Double(saved.normalized[r * c + ch])
                }
            }
        }
        bias.gradient = sumDy.map { Float($0) }
        scale.gradient = sumDyXhat.map { Float($0) }
        guard needInputGradient else { return nil }
        return Batch.uninitialized(saved.shape) { dx in
            outputGradient.values.withUnsafeBufferPointer { dy in
                for ch in 0..<c {
                    let k = scale.value[ch] * saved.inverseStd[ch]
                    if saved.training {
                        // dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂)), the batch statistics depend on x.
                        let meanDy = Float(sumDy[ch] / Double(rows))
                        let meanDyXhat = Float(sumDyXhat[ch] / Double(rows))
                        for r in 0..<rows {
                            let i = r * c + ch
                            dx[i] = k * (dy[i] - meanDy - saved.normalized[i] * meanDyXhat)
                        }
                    } else {
                        for r in 0..<rows { dx[r * c + ch] = k * dy[r * c + ch] }
                    }
                }
            }
        }
    }

    public func export() throws -> LayerExport {
        LayerExport(operation: .batchNormalization(epsilon: epsilon),
                    initializers: parameters.map { ($0.name, $0.tensor) })
    }
}
