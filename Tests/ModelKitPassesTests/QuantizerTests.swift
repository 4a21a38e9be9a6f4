import ModelKitCore
@testable import ModelKitPasses
import ModelKitRuntime
import Testing

@Suite("Post-training int8 quantization")
struct QuantizerTests {
    /// conv(relu) → maxpool → conv + BN (folded) → relu (fused) → residual add → GAP → flatten →
    /// dense → softmax, with weights scaled like a trained net's (activations of order 1).
    static func cnn() -> Graph {
        var b = GraphBuilder(input: [-1, 10, 10, 2])
        let w1 = b.constant("w1", [8, 3, 3, 2], scale: 0.4)
        let b1 = b.constant("b1", [8], scale: 0.1)
        var x = b.node("conv1", .conv2D(Conv2DAttributes(padding: .same, activation: .relu)), ["x", w1, b1])
        x = b.node("pool", .maxPool2D(Pool2DAttributes(kernel: (2, 2))), [x])
        let w2 = b.constant("w2", [8, 3, 3, 8], scale: 0.2)
        let conv2 = b.node("conv2", .conv2D(Conv2DAttributes(padding: .same)), [x, w2])
        let bn = b.batchNorm("bn", conv2, channels: 8)
        let relu = b.node("relu", .relu, [bn])
        let sum = b.node("sum", .add(activation: .none), [relu, x])
        let gap = b.node("gap", .globalAveragePool, [sum])
        let flat = b.node("flat", .flatten(axis: 1), [gap])
        let w3 = b.constant("w3", [6, 8], scale: 1.5)
        let b3 = b.constant("b3", [6], scale: 0.1)
        let logits = b.node("logits", .dense(activation: .none), [flat, w3, b3])
        _ = b.node("probs", .softmax(axis: -1), [logits])
        return b.finish("probs")
    }

    static func batches(_ count: Int, seed: UInt64, batch: Int = 16) -> [Tensor] {
        var random = Random(seed: seed)
        return (0..<count).map { _ in random.tensor([batch, 10, 10, 2], scale: 1.5) }
    }

    static func argmax(_ values: ArraySlice<Float>) -> Int {
        values.indices.max { values[$0] < values[$1] }! - values.startIndex
    }

    /// Top-1 agreement and worst probability difference of the int8 model on unseen inputs.
    static func agreement(_ float: Model, _ int8: Model, _ inputs: [Tensor]) throws -> (Double, Float) {
        let floatSession = try Session(model: float)
        let int8Session = try Session(model: int8)
        var same = 0, total = 0
        var worst: Float = 0
        for input in inputs {
            let a = try floatSession.run(input).floats!, b = try int8Session.run(input).floats!
            for row in 0..<input.shape[0] {
                let range = (row * 6)..<((row + 1) * 6)
                same += argmax(a[range]) == argmax(b[range]) ? 1 : 0
                total += 1
            }
            worst = max(worst, zip(a, b).map { abs($0 - $1) }.max()!)
        }
        return (Double(same) / Double(total), worst)
    }

    @Test(arguments: [CalibrationMethod.minMax, .percentile(99.99)])
    func int8ModelAgreesWithFloat(method: CalibrationMethod) throws {
        let model = Model(graph: Self.cnn())
        let result = try PostTrainingQuantization(model: model, batches: Self.batches(4, seed: 1),
                                                  options: QuantizationOptions(method: method))
        let graph = result.model.graph
        // Structure: the float ops are gone, int8 weights are per channel, softmax reads a dequantized value.
        let counts = opCounts(graph)
        #expect(counts["Conv2D"] == 2 && counts["Dense"] == 1 && counts["Add"] == 1 && counts["BatchNormalization"] == nil)
        #expect(counts["QuantizeLinear"] == 1 && counts["DequantizeLinear"] == 1)
        #expect(graph.initializers.values.allSatisfy { $0.dtype != .float32 })
        #expect(graph.initializers["w1/int8"]?.quantization?.scales.count == 8)
        let softmax = try #require(graph.nodes.first { $0.operation == .softmax(axis: -1) })
        let producer = try #require(graph.nodes.first { $0.outputs == softmax.inputs })
        #expect(producer.operation == .dequantizeLinear)
        // Pool and GAP keep their input's parameters.
        #expect(graph.valueQuantization["pool/int8"] == graph.valueQuantization["conv1/int8"])
        #expect(graph.valueQuantization["gap/int8"] == graph.valueQuantization["sum/int8"])

        let (agreement, worst) = try Self.agreement(model, result.model, Self.batches(8, seed: 99))
        #expect(agreement >= 0.9, "top-1 agreement \(agreement)")
        #expect(worst < 0.1, "worst probability difference \(worst)")

        // Per-layer error: every int8 value is reported, all close to float.
        let errors = try QuantizationDiagnostics.layerErrors(float: result.floatGraph, quantized: graph,
                                                             batches: Self.batches(1, seed: 5))
        #expect(Set(errors.map(\.value)).isSuperset(of: ["conv1", "relu", "sum", "logits"]))  // conv2+bn+relu fused into "relu"
        #expect(errors.allSatisfy { $0.sqnrDecibels > 15 && $0.cosine > 0.98 }, "\(errors)")
        #expect(zip(errors, errors.dropFirst()).allSatisfy { $0.sqnrDecibels <= $1.sqnrDecibels })
    }

    @Test func perTensorWeightsShareOneScale() throws {
        let result = try PostTrainingQuantization(model: Model(graph: Self.cnn()), batches: Self.batches(2, seed: 1),
                                                  options: QuantizationOptions(perTensorWeights: true))
        let scales = try #require(result.model.graph.initializers["w1/int8"]?.quantization?.scales)
        #expect(Set(scales).count == 1 && scales.count == 8)
        let (agreement, _) = try Self.agreement(Model(graph: Self.cnn()), result.model, Self.batches(4, seed: 99))
        #expect(agreement >= 0.85)
    }

    @Test func int8InputTakesCodes() throws {
        let result = try PostTrainingQuantization(model: Model(graph: Self.cnn()), batches: Self.batches(2, seed: 1),
                                                  options: QuantizationOptions(int8IO: true))
        let input = result.model.graph.inputs[0]
        #expect(input.dtype == .int8 && input.quantization != nil)
        #expect(opCounts(result.model.graph)["QuantizeLinear"] == nil)
        let session = try Session(model: result.model)
        let codes = Tensor(shape: Shape([1, 10, 10, 2]), storage: .int8([Int8](repeating: 5, count: 200)))
        let probabilities = try session.run(codes).floats!
        #expect(abs(probabilities.reduce(0, +) - 1) < 1e-4)
    }

    @Test func percentileClipsRareOutliers() {
        var counts = [Int](repeating: 0, count: 100)
        counts[10] = 100_000
        counts[0] = 1   // one outlier at the bottom (the minimum)
        counts[99] = 1  // one at the top (the maximum)
        let range = ActivationRanges.percentileRange(counts, range: 0...100, percentile: 99.99)
        #expect(range.lowerBound == 10 && range.upperBound == 11)
        #expect(ActivationRanges.percentileRange(counts, range: 0...100, percentile: 100) == 0...100)
    }

    @Test func asymmetricParametersKeepZeroExact() {
        let q = ActivationRanges.parameters(for: 0...6)
        #expect(q.zeroPoints == [-128] && abs(q.scales[0] - 6.0 / 255) < 1e-7)
        let r = ActivationRanges.parameters(for: -1...3)
        #expect(abs(r.scales[0] - 4.0 / 255) < 1e-7)
        // Code −128 stands for the minimum −1 (within half a step, the zero point being an integer).
        #expect(abs(r.scales[0] * Float(-128 - r.zeroPoints[0]) + 1) <= r.scales[0] / 2)
        #expect(ActivationRanges.parameters(for: 0...0).scales == [1])
    }

    @Test func badCalibrationDataIsRejected() {
        let model = Model(graph: Self.cnn())
        #expect(throws: QuantizationError.noCalibrationData) { try PostTrainingQuantization(model: model, batches: []) }
        let wrong = Tensor(shape: Shape([1, 10, 10, 3]), floats: [Float](repeating: 0, count: 300))
        #expect(throws: QuantizationError.calibrationShape(expected: Shape([-1, 10, 10, 2]), actual: Shape([1, 10, 10, 3]))) {
            try PostTrainingQuantization(model: model, batches: [wrong])
        }
        var values = [Float](repeating: 0.5, count: 200)
        values[17] = .nan
        #expect(throws: QuantizationError.nonFiniteCalibration(value: "x")) {
            try PostTrainingQuantization(model: model, batches: [Tensor(shape: Shape([1, 10, 10, 2]), floats: values)])
        }
    }
}
