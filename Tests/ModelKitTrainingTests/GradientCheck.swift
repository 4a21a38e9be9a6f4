@testable import ModelKitTraining

/// Central finite differences against a layer's backward pass. The scalar probed is
/// L = Σ output · R for a fixed random R (so every output element matters), accumulated in
/// Double; the comparison uses the relative error of whole gradient vectors,
/// ‖analytic − numeric‖ / (‖analytic‖ + ‖numeric‖).
enum GradientCheck {
    static let eps: Float = 1e-3

    static func loss(_ output: Batch, _ r: [Float]) -> Double {
        var total = 0.0
        for i in 0..<output.count { total += Double(output.values[i]) * Double(r[i]) }
        return total
    }

    static func relativeError(_ a: [Float], _ b: [Double]) -> Double {
        var diff = 0.0, na = 0.0, nb = 0.0
        for i in a.indices {
            diff += (Double(a[i]) - b[i]) * (Double(a[i]) - b[i])
            na += Double(a[i]) * Double(a[i])
            nb += b[i] * b[i]
        }
        let denominator = na.squareRoot() + nb.squareRoot()
        return denominator == 0 ? 0 : diff.squareRoot() / denominator
    }

    /// Returns the worst relative error over the inputs and the trainable parameters.
    /// `seed` fixes the generator each forward pass sees (Dropout masks repeat).
    static func check(_ layer: any Layer, inputs: [Batch], seed: UInt64 = 99) throws -> [String: Double] {
        func run(_ inputs: [Batch], training: Bool = true) throws -> Batch {
            var rng = RandomGenerator(seed: seed)
            return try layer.forward(inputs, training: training, rng: &rng)
        }
        let output = try run(inputs)
        var rr = RandomGenerator(seed: 1234)
        let r = (0..<output.count).map { _ in rr.nextFloat(in: -1, 1) }
        _ = try run(inputs)
        let inputGradients = try layer.backward(Batch(shape: output.shape, values: r), needInputGradients: true)
        let parameterGradients = layer.parameters.filter(\.isTrainable).map { ($0, $0.gradient) }
        var errors: [String: Double] = [:]

        for (index, input) in inputs.enumerated() {
            var numeric = [Double](repeating: 0, count: input.count)
            var probe = inputs
            for i in 0..<input.count {
                let original = input.values[i]
                probe[index].values[i] = original + eps
                let plus = loss(try run(probe), r)
                probe[index].values[i] = original - eps
                let minus = loss(try run(probe), r)
                probe[index].values[i] = original
                numeric[i] = (plus - minus) / (2 * Double(eps))
            }
            errors["input\(index)"] = relativeError(inputGradients[index].values, numeric)
        }
        for (parameter, analytic) in parameterGradients {
            let numeric = try numericGradient(of: parameter, step: eps) { loss(try run(inputs), r) }
            errors[parameter.name] = relativeError(analytic, numeric)
        }
        return errors
    }

    /// Central differences of `loss` with respect to every value of `parameter`.
    static func numericGradient(of parameter: Parameter, step: Float, loss: () throws -> Double) rethrows -> [Double] {
        var numeric = [Double](repeating: 0, count: parameter.count)
        for i in 0..<parameter.count {
            let original = parameter.value[i]
            parameter.value[i] = original + step
            let plus = try loss()
            parameter.value[i] = original - step
            let minus = try loss()
            parameter.value[i] = original
            numeric[i] = (plus - minus) / (2 * Double(step))
        }
        return numeric
    }

    /// Random values in [-1, 1) kept at least `margin` away from every point in `kinks`.
    static func input(_ shape: [Int], seed: UInt64, avoiding kinks: [Float] = [], margin: Float = 0.02,
                      scale: Float = 1) -> Batch {
        var rng = RandomGenerator(seed: seed)
        let values = (0..<shape.reduce(1, *)).map { _ -> Float in
            while true {
                let v = rng.nextFloat(in: -scale, scale)
                if kinks.allSatisfy({ abs(v - $0) > margin }) { return v }
            }
        }
        return Batch(shape: shape, values: values)
    }

    /// Distinct values (a shuffled grid spaced 0.05 apart), so pooling maxima have no ties.
    static func distinctInput(_ shape: [Int], seed: UInt64) -> Batch {
        var rng = RandomGenerator(seed: seed)
        let count = shape.reduce(1, *)
        var values = (0..<count).map { Float($0) * 0.05 - Float(count) * 0.025 }
        rng.shuffle(&values)
        return Batch(shape: shape, values: values)
    }
}
