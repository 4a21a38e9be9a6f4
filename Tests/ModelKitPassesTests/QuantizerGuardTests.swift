import ModelKitCore
@testable import ModelKitPasses
import ModelKitRuntime
import Testing

@Suite("Mixed int8/float quantization and the accuracy guard")
struct QuantizerGuardTests {
    /// x → d1 (ReLU) → d2 (ReLU) → d3. Row 0 of d2's weights is hugely negative: on post-ReLU inputs
    /// its output is always 0, so the float net ignores it, but with one weight scale per tensor it
    /// rounds every other row of d2 to zero: d2 is the one layer that cannot be int8.
    static func sensitiveMLP() -> Graph {
        var b = GraphBuilder(input: [-1, 16])
        let w1 = b.constant("w1", [16, 16], scale: 0.5)
        let b1 = b.constant("b1", [16], scale: 0.1)
        var w2 = b.random.floats(16 * 16, scale: 0.5)
        for k in 0..<16 { w2[k] = -400 }
        let w2Name = b.constant("w2", [16, 16], values: w2)
        let b2 = b.constant("b2", [16], scale: 0.1)
        let w3 = b.constant("w3", [6, 16], scale: 0.8)
        let h1 = b.node("d1", .dense(activation: .relu), ["x", w1, b1])
        let h2 = b.node("d2", .dense(activation: .relu), [h1, w2Name, b2])
        _ = b.node("d3", .dense(activation: .none), [h2, w3])
        return b.finish("d3")
    }

    static func inputs(_ count: Int, seed: UInt64) -> [Tensor] {
        var random = Random(seed: seed)
        return (0..<count).map { _ in random.tensor([32, 16], scale: 1.5) }
    }

    /// Top-1 agreement with the float model: the "accuracy" the guard protects here.
    static func agreement(_ float: Model, _ int8: Model, _ inputs: [Tensor], classes: Int) throws -> Double {
        let a = try Session(model: float), b = try Session(model: int8)
        var same = 0, total = 0
        for input in inputs {
            let x = try a.run(input).floats!, y = try b.run(input).floats!
            for row in 0..<input.shape[0] {
                let range = (row * classes)..<((row + 1) * classes)
                same += QuantizerTests.argmax(x[range]) == QuantizerTests.argmax(y[range]) ? 1 : 0
                total += 1
            }
        }
        return Double(same) / Double(total)
    }

    @Test func floatNodesStayFloatBetweenConversions() throws {
        let model = Model(graph: QuantizerTests.cnn())
        let all = try PostTrainingQuantization(model: model, batches: QuantizerTests.batches(2, seed: 1))
        #expect(all.int8Layers.contains("logits") && all.int8Layers.contains("conv1"))
        let mixed = try all.keepingFloat(["logits"])
        let graph = mixed.model.graph
        let logits = try #require(graph.nodes.first { $0.name == "logits" })
        #expect(graph.initializers[logits.inputs[1]]?.dtype == .float32)
        #expect(graph.valueQuantization[logits.outputs[0]] == nil)
        #expect(!mixed.int8Layers.contains("logits") && mixed.int8Layers.contains("conv1"))
        // Its input comes through a DequantizeLinear; the int8 layers before it are untouched.
        let producer = try #require(graph.nodes.first { $0.outputs == [logits.inputs[0]] })
        #expect(producer.operation == .dequantizeLinear)
        #expect(graph.initializers["w1/int8"] == all.model.graph.initializers["w1/int8"])
        #expect(mixed.model.metadata.properties["quantization.float_layers"] == "logits")
        let (agreement, _) = try QuantizerTests.agreement(model, mixed.model, QuantizerTests.batches(8, seed: 99))
        #expect(agreement >= 0.9)
    }

    @Test func guardFindsTheSensitiveLayerAndStopsThere() throws {
        let model = Model(graph: Self.sensitiveMLP())
        let calibration = Self.inputs(2, seed: 1)
        let held = Self.inputs(8, seed: 77)
        let quantization = try PostTrainingQuantization(model: model, batches: calibration,
                                                        options: QuantizationOptions(perTensorWeights: true))
        let before = try Self.agreement(model, quantization.model, held, classes: 6)
        #expect(before < 0.9, "the per-tensor int8 model should be clearly off, agreement \(before)")

        let ranking = try AccuracyGuard.sensitivities(quantization, batches: calibration)
        #expect(ranking.map(\.node).sorted() == ["d1", "d2", "d3"])
        #expect(ranking.first?.node == "d2", "\(ranking)")

        let outcome = try AccuracyGuard.run(quantization, floatAccuracy: 1, maxDrop: 0.05, sensitivityBatches: calibration) {
            try Self.agreement(model, $0, held, classes: 6)
        }
        #expect(outcome.floatLayers == ["d2"])
        #expect(outcome.accuracy >= 0.95, "agreement \(outcome.accuracy)")
        let graph = outcome.quantization.model.graph
        let d2 = try #require(graph.nodes.first { $0.name == "d2" })
        #expect(graph.initializers[d2.inputs[1]]?.dtype == .float32)
        #expect(outcome.quantization.int8Layers == ["d1", "d3"])
    }

    @Test func guardLeavesAGoodModelAlone() throws {
        let model = Model(graph: QuantizerTests.cnn())
        let quantization = try PostTrainingQuantization(model: model, batches: QuantizerTests.batches(2, seed: 1))
        var evaluations = 0
        let outcome = try AccuracyGuard.run(quantization, floatAccuracy: 0.9, maxDrop: 0.01,
                                            sensitivityBatches: QuantizerTests.batches(1, seed: 1)) { _ in
            evaluations += 1
            return 0.895
        }
        #expect(evaluations == 1 && outcome.floatLayers.isEmpty && outcome.ranking.isEmpty)
        #expect(outcome.quantization.model == quantization.model)
    }

    @Test func guardGivesUpOnlyWhenEveryLayerIsFloat() throws {
        // An evaluation that never recovers: every layer goes back to float, then the guard stops.
        let model = Model(graph: Self.sensitiveMLP())
        let quantization = try PostTrainingQuantization(model: model, batches: Self.inputs(1, seed: 1))
        let outcome = try AccuracyGuard.run(quantization, floatAccuracy: 1, maxDrop: 0,
                                            sensitivityBatches: Self.inputs(1, seed: 1)) { _ in 0.5 }
        #expect(Set(outcome.floatLayers) == ["d1", "d2", "d3"])
        #expect(outcome.quantization.int8Layers.isEmpty)
        #expect(!outcome.quantization.model.graph.nodes.contains { $0.operation == .quantizeLinear })
    }

    /// Two Dense nodes read one bias initializer: each must get its own int32 copy at its own scale
    /// (input scale × weight scale), or the first node's bias is off by the ratio of the scales.
    @Test func sharedBiasGetsOneInt32CopyPerNode() throws {
        var b = GraphBuilder(input: [-1, 8])
        let w1 = b.constant("w1", [8, 8], scale: 0.5)
        let w2 = b.constant("w2", [8, 8], scale: 3)
        let bias = b.constant("bias", [8], scale: 1)
        let h = b.node("h", .dense(activation: .relu), ["x", w1, bias])
        _ = b.node("y", .dense(activation: .none), [h, w2, bias])
        let model = Model(graph: b.finish("y"))
        var random = Random(seed: 3)
        let batches = (0..<2).map { _ in random.tensor([16, 8], scale: 0.2) }
        let result = try PostTrainingQuantization(model: model, batches: batches)
        let graph = result.model.graph
        for name in ["h", "y"] {
            let node = try #require(graph.nodes.first { $0.name == name })
            let inputScale = try #require(graph.valueQuantization[node.inputs[0]]?.scales.first)
            let weightScales = try #require(graph.initializers[node.inputs[1]]?.quantization?.scales)
            let biasTensor = try #require(graph.initializers[node.inputs[2]])
            #expect(biasTensor.dtype == .int32)
            let expected = weightScales.map { $0 * inputScale }
            let actual = try #require(biasTensor.quantization?.scales)
            #expect(zip(expected, actual).allSatisfy { abs($0 - $1) <= 1e-6 * abs($0) }, "\(name): \(actual) vs \(expected)")
        }
        // And the numbers: the int8 model tracks the float one.
        let float = try Session(model: model).run(batches[0]).floats!
        let int8 = try Session(model: result.model).run(batches[0]).floats!
        let magnitude = float.map { abs($0) }.max()!
        let worst = zip(float, int8).map { abs($0 - $1) }.max()!
        #expect(worst <= 0.05 * magnitude, "worst difference \(worst) of \(magnitude)")
    }
}
