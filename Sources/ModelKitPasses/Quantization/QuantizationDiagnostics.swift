import ModelKitCore
import ModelKitRuntime

/// How far one int8 value is from the float value it stands for, over some samples.
public struct LayerError: Sendable, Hashable {
    /// The float graph's node that produces the value (or the input name).
    public var node: String
    public var value: String
    /// Signal-to-quantization-noise ratio in dB: 10·log10(Σ ref² / Σ (ref − int8)²); infinite when exact.
    public var sqnrDecibels: Double
    /// Cosine similarity of the float and dequantized int8 activations.
    public var cosine: Double
}

/// Per-layer error of a quantized graph against the float graph it came from.
public enum QuantizationDiagnostics {
    /// Runs both graphs over `batches` (float, shaped like the float graph's input) and compares every
    /// int8 value of `quantized` with the float value of the same name in `float`, worst SQNR first.
    public static func layerErrors(float: Graph, quantized: Graph, batches: [Tensor]) throws -> [LayerError] {
        guard float.inputs.count == 1, quantized.inputs.count == 1 else {
            throw QuantizationError.notSingleInput(count: float.inputs.count)
        }
        var producer: [String: String] = [float.inputs[0].name: float.inputs[0].name]
        for node in float.nodes { producer[node.outputs[0]] = node.name }

        // Dequantize every int8 value whose float original exists, as extra outputs.
        var diagnostic = quantized
        var pairs: [(original: String, probe: String)] = []
        for (name, _) in quantized.valueQuantization.sorted(by: { $0.key < $1.key }) {
            let original = name.hasSuffix(Int8Quantizer.int8Suffix) ? String(name.dropLast(Int8Quantizer.int8Suffix.count)) : name
            guard producer[original] != nil else { continue }
            let probe = name + "/probe"
            diagnostic.nodes.append(Node(name: probe, operation: .dequantizeLinear, inputs: [name], outputs: [probe]))
            pairs.append((original, probe))
        }
        diagnostic.outputs = pairs.map(\.probe)
        var reference = float
        reference.outputs = Array(Set(pairs.map(\.original))).sorted()
        guard !pairs.isEmpty else { return [] }
        let floatSession: Session
        let int8Session: Session
        do {
            floatSession = try Session(model: Model(graph: reference))
            int8Session = try Session(model: Model(graph: diagnostic))
        } catch {
            throw QuantizationError.invalidGraph(reason: "\(error)")
        }
        let quantizedInput = quantized.inputs[0]
        var signal = [Double](repeating: 0, count: pairs.count)
        var noise = [Double](repeating: 0, count: pairs.count)
        var dot = [Double](repeating: 0, count: pairs.count)
        var probeEnergy = [Double](repeating: 0, count: pairs.count)
        for batch in batches {
            let expected = try floatSession.run([float.inputs[0].name: batch])
            let feed = quantizedInput.dtype == .int8 ? quantize(batch, quantizedInput.quantization!) : batch
            let actual = try int8Session.run([quantizedInput.name: feed])
            for (position, pair) in pairs.enumerated() {
                guard let a = expected[pair.original]?.floats, let b = actual[pair.probe]?.floats, a.count == b.count else { continue }
                for index in a.indices {
                    let (x, y) = (Double(a[index]), Double(b[index]))
                    signal[position] += x * x
                    noise[position] += (x - y) * (x - y)
                    dot[position] += x * y
                    probeEnergy[position] += y * y
                }
            }
        }
        var errors: [LayerError] = []
        for (position, pair) in pairs.enumerated() {
            let sqnr = noise[position] == 0 ? Double.infinity
                : 10 * log10Approximation(max(signal[position], .leastNormalMagnitude) / noise[position])
            let norms = (signal[position] * probeEnergy[position]).squareRoot()
            let cosine = norms == 0 ? (signal[position] == probeEnergy[position] ? 1 : 0) : dot[position] / norms
            errors.append(LayerError(node: producer[pair.original]!, value: pair.original, sqnrDecibels: sqnr, cosine: cosine))
        }
        return errors.sorted { $0.sqnrDecibels != $1.sqnrDecibels ? $0.sqnrDecibels < $1.sqnrDecibels : $0.value < $1.value }
    }

    /// A float batch as int8 codes with per-tensor parameters (round to nearest, saturating).
    static func quantize(_ tensor: Tensor, _ q: QuantizationParameters) -> Tensor {
        let codes = tensor.floats!.map { Int8ReferenceKernels.quantize($0, scale: q.scales[0], zeroPoint: q.zeroPoints[0]) }
        return Tensor(shape: tensor.shape, storage: .int8(codes), quantization: q)
    }

    /// log10 without Foundation: the binary exponent plus a series for the mantissa's logarithm.
    static func log10Approximation(_ x: Double) -> Double {
        guard x > 0, x.isFinite else { return x == 0 ? -.infinity : .infinity }
        let exponent = Double(x.exponent)
        let mantissa = x.significand  // in [1, 2)
        // ln(m) = 2·atanh((m − 1)/(m + 1)), a fast-converging series on [1, 2).
        let t = (mantissa - 1) / (mantissa + 1)
        var term = t
        var sum = 0.0
        var k = 1.0
        while abs(term / k) > 1e-17 {
            sum += term / k
            term *= t * t
            k += 2
        }
        let ln2 = 0.6931471805599453
        return (2 * sum + exponent * ln2) / 2.302585092994046
    }
}
