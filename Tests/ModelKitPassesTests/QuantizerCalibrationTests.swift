import Foundation
import ModelKitCore
@testable import ModelKitPasses
import ModelKitRuntime
import Testing

/// Range choice on synthetic distributions with known shapes.
@Suite("Calibration methods")
struct CalibrationMethodTests {
    /// Normal samples (Box–Muller over the xorshift stream) times `scale`.
    static func gaussian(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var random = Random(seed: seed)
        return (0..<count).map { _ in
            let u1 = Double(random.next() * 0.5 + 0.5).clamped(1e-9, 1)
            let u2 = Double(random.next() * 0.5 + 0.5)
            let radius = (-2 * log(u1)).squareRoot()
            return Float(radius * cos(2 * Double.pi * u2)) * scale
        }
    }

    /// Calibrates an identity-like graph (x → ReLU or x → Dropout) whose values are `values`.
    static func range(of values: [Float], method: CalibrationMethod, relu: Bool = false) throws -> (input: ClosedRange<Float>, output: ClosedRange<Float>) {
        var builder = GraphBuilder(input: [-1, values.count])
        _ = builder.node("y", relu ? .relu : .dropout(rate: 0.5), ["x"])
        let ranges = try ActivationRanges.collect(graph: builder.finish("y"),
                                                  batches: [Tensor(shape: Shape([1, values.count]), floats: values)],
                                                  method: method)
        return (ranges.ranges["x"]!, ranges.ranges["y"]!)
    }

    @Test func entropyClipsFarOutliersThatMinMaxKeeps() throws {
        var values = Self.gaussian(100_000, seed: 3)
        values += [60, -45, 52]  // three far outliers among 100 000
        let minMax = try Self.range(of: values, method: .minMax).input
        #expect(minMax.upperBound == 60 && minMax.lowerBound == -45)
        let entropy = try Self.range(of: values, method: .entropy).input
        // The threshold lands in the Gaussian's tail, far below the outliers but beyond ~3σ.
        #expect(entropy.upperBound > 2.5 && entropy.upperBound < 12, "\(entropy)")
        #expect(entropy.lowerBound < -2.5 && entropy.lowerBound > -12, "\(entropy)")
        // Symmetric data, symmetric cut.
        #expect(entropy.lowerBound == -entropy.upperBound)
    }

    @Test func entropyKeepsAUniformRange() throws {
        // Nothing to gain from clipping a uniform distribution: the cut stays near the edge.
        var random = Random(seed: 11)
        let values = random.floats(50_000, scale: 4)
        let entropy = try Self.range(of: values, method: .entropy).input
        #expect(entropy.upperBound > 3.8 && entropy.lowerBound < -3.8, "\(entropy)")
    }

    @Test func entropyOnOneSidedValuesStartsAtZero() throws {
        var values = Self.gaussian(80_000, seed: 5, scale: 2)
        values += [90]
        let (_, output) = try Self.range(of: values, method: .entropy, relu: true)
        #expect(output.lowerBound == 0)
        #expect(output.upperBound > 4 && output.upperBound < 25, "\(output)")
        // Mostly-positive values with a small negative part keep the negative part unclipped.
        let shifted = values.map { $0 + 3 }
        let (input, _) = try Self.range(of: shifted, method: .entropy)
        #expect(input.lowerBound == shifted.min()!, "\(input)")
        #expect(input.upperBound < 40, "\(input)")
    }

    /// After a ReLU most values are exactly zero. Zero is exact on every int8 grid (it has its own
    /// code), so that spike must not count: merged into the first level with its neighbours, it would
    /// make every wide threshold look bad and squeeze the range to a sliver of the real one.
    @Test func entropyIgnoresTheZeroSpikeAfterReLU() throws {
        let values = Self.gaussian(100_000, seed: 9).map { $0 - 1.2 }  // ~88% ≤ 0: zeros after ReLU
        let (_, output) = try Self.range(of: values, method: .entropy, relu: true)
        let maximum = values.max()!
        #expect(output.lowerBound == 0)
        // No far outliers here: the cut stays in the tail, well above the bulk of the positive values.
        #expect(output.upperBound > 0.6 * maximum, "\(output) of max \(maximum)")
    }

    @Test func klDivergenceIsZeroOnlyForEqualShapes() {
        let p: [Double] = [1, 2, 3, 4]
        #expect(EntropyCalibration.klDivergence(p[...], p.map { $0 * 10 }[...]) == 0)
        #expect(EntropyCalibration.klDivergence(p[...], [4, 3, 2, 1][...]) > 0.1)
    }

    @Test func entropyModelStillAgreesWithFloat() throws {
        let model = Model(graph: QuantizerTests.cnn())
        let result = try PostTrainingQuantization(model: model, batches: QuantizerTests.batches(4, seed: 1),
                                                  options: QuantizationOptions(method: .entropy))
        #expect(result.model.metadata.properties["quantization.method"] == "entropy")
        let (agreement, _) = try QuantizerTests.agreement(model, result.model, QuantizerTests.batches(8, seed: 99))
        #expect(agreement >= 0.9, "top-1 agreement \(agreement)")
    }

    @Test func progressCountsEveryBatchOfEveryPass() throws {
        var seen: [(Int, Int)] = []
        _ = try ActivationRanges.collect(graph: QuantizerTests.cnn(), batches: QuantizerTests.batches(3, seed: 1),
                                         method: .entropy) { seen.append(($0, $1)) }
        #expect(seen.map(\.0) == [1, 2, 3, 4, 5, 6] && seen.allSatisfy { $0.1 == 6 })
        var minMaxSteps = 0
        _ = try ActivationRanges.collect(graph: QuantizerTests.cnn(), batches: QuantizerTests.batches(3, seed: 1),
                                         method: .minMax) { _, _ in minMaxSteps += 1 }
        #expect(minMaxSteps == 3)
    }
}

private extension Double {
    func clamped(_ lo: Double, _ hi: Double) -> Double { Swift.min(Swift.max(self, lo), hi) }
}
