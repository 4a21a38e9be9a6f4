import ModelKitCore
import ModelKitPasses
import Testing

@Suite("Passes: BatchNormalization, affine and Pad folding")
struct FoldingPassTests {
    @Test(arguments: [true, false])
    func batchNormFoldsIntoConv(withBias: Bool) throws {
        var b = GraphBuilder(input: [-1, 6, 6, 3])
        let w = b.constant("w", [4, 3, 3, 3])
        var inputs = ["x", w]
        if withBias { inputs.append(b.constant("b", [4])) }
        let conv = b.node("conv", .conv2D(Conv2DAttributes(padding: .same)), inputs)
        let bn = b.batchNorm("bn", conv, channels: 4)
        let graph = b.finish(bn)
        let result = try runPass(FoldBatchNormalization(), graph)
        #expect(result.rewrites == 1)
        #expect(opCounts(result.graph) == ["Conv2D": 1])
        #expect(result.graph.outputs == ["bn"])
        #expect(result.graph.nodes[0].inputs.count == 3)
    }

    @Test func batchNormFoldsIntoDepthwiseConvAndDense() throws {
        var b = GraphBuilder(input: [2, 5, 5, 4])
        let dw = b.node("dw", .conv2D(Conv2DAttributes(groups: 4)), ["x", b.constant("dw.w", [4, 3, 3, 1])])
        let bn1 = b.batchNorm("bn1", dw, channels: 4)
        let flat = b.node("flat", .flatten(axis: 1), [bn1])
        let dense = b.node("fc", .dense(activation: .none), [flat, b.constant("fc.w", [3, 36]), b.constant("fc.b", [3])])
        let bn2 = b.batchNorm("bn2", dense, channels: 3)
        let result = try runPass(FoldBatchNormalization(), b.finish(bn2))
        #expect(result.rewrites == 2)
        #expect(opCounts(result.graph) == ["Conv2D": 1, "Flatten": 1, "Dense": 1])
    }

    @Test func batchNormIsNotFoldedAcrossASharedValueOrAnActivation() throws {
        var b = GraphBuilder(input: [1, 4, 4, 2])
        let conv = b.node("conv", .conv2D(Conv2DAttributes()), ["x", b.constant("w", [2, 1, 1, 2])])
        let bn = b.batchNorm("bn", conv, channels: 2)
        let other = b.node("other", .relu, [conv])  // a second reader of the conv output
        let shared = b.finish(bn, other)
        #expect(try FoldBatchNormalization().run(shared).changed == false)

        var c = GraphBuilder(input: [1, 4, 4, 2])
        let fused = c.node("conv", .conv2D(Conv2DAttributes(activation: .relu)), ["x", c.constant("w", [2, 1, 1, 2])])
        let lastC = c.batchNorm("bn", fused, channels: 2)
        #expect(try FoldBatchNormalization().run(c.finish(lastC)).changed == false)

        var d = GraphBuilder(input: [1, 4, 4, 2])
        let convOut = d.node("conv", .conv2D(Conv2DAttributes()), ["x", d.constant("w", [2, 1, 1, 2])])
        let bnOut = d.batchNorm("bn", convOut, channels: 2)
        #expect(try FoldBatchNormalization().run(d.finish(bnOut, convOut)).changed == false, "conv output is a graph output")
    }

    @Test func mulAndAddByConstantFoldIntoConvAndDense() throws {
        var b = GraphBuilder(input: [-1, 4, 4, 2])
        let conv = b.node("conv", .conv2D(Conv2DAttributes()), ["x", b.constant("w", [3, 2, 2, 2])])
        let scaled = b.node("scale", .mul, [b.constant("s", [1, 1, 1, 3]), conv])
        let shifted = b.node("shift", .add(activation: .relu), [scaled, b.constant("t", [3])])
        let flat = b.node("flat", .flatten(axis: 1), [shifted])
        let dense = b.node("fc", .dense(activation: .none), [flat, b.constant("fc.w", [2, 27])])
        let half = b.node("half", .mul, [dense, b.constant("k", [], values: [0.5])])
        let result = try runPass(FoldConstantAffine(), b.finish(half))
        #expect(result.rewrites == 3)
        #expect(opCounts(result.graph) == ["Conv2D": 1, "Flatten": 1, "Dense": 1])
        #expect(result.graph.nodes[0].operation.fusedActivation == .relu, "the Add's activation moves onto the Conv2D")
    }

    @Test func affineIsNotFoldedWhenItBroadcastsOrIsNotConstant() throws {
        // A [1,H,W,C] constant varies over space: not per channel.
        var b = GraphBuilder(input: [1, 4, 4, 2])
        let conv = b.node("conv", .conv2D(Conv2DAttributes()), ["x", b.constant("w", [2, 1, 1, 2])])
        let out = b.node("mul", .mul, [conv, b.constant("s", [1, 4, 4, 2])])
        #expect(try FoldConstantAffine().run(b.finish(out)).changed == false)
        // Two run-time operands.
        var c = GraphBuilder(input: [1, 4, 4, 2])
        let conv2 = c.node("conv", .conv2D(Conv2DAttributes()), ["x", c.constant("w", [2, 1, 1, 2])])
        let lastC = c.node("add", .add(activation: .none), [conv2, "x"])
        #expect(try FoldConstantAffine().run(c.finish(lastC)).changed == false)
        // A constant of higher rank than the output would broadcast it to a new shape.
        var d = GraphBuilder(input: [1, 3])
        let dense = d.node("fc", .dense(activation: .none), ["x", d.constant("w", [2, 3])])
        let lastD = d.node("mul", .mul, [dense, d.constant("k", [1, 1, 2])])
        #expect(try FoldConstantAffine().run(d.finish(lastD)).changed == false)
    }

    @Test func zeroSpatialPadFoldsIntoConvAndCountingAveragePool() throws {
        var b = GraphBuilder(input: [-1, 5, 5, 2])
        let pad = b.node("pad", .pad(pads: [0, 1, 2, 0, 0, 2, 1, 0], value: 0), ["x"])
        let conv = b.node("conv", .conv2D(Conv2DAttributes(strides: (2, 2), padding: .same)),
                          [pad, b.constant("w", [3, 3, 3, 2])])
        let pad2 = b.node("pad2", .pad(pads: [0, 1, 1, 0, 0, 1, 1, 0], value: 0), [conv])
        let pool = b.node("pool", .averagePool2D(Pool2DAttributes(kernel: (2, 2), countIncludePad: true)), [pad2])
        let result = try runPass(FoldPad(), b.finish(pool))
        #expect(result.rewrites == 2)
        #expect(opCounts(result.graph) == ["Conv2D": 1, "AveragePool2D": 1])
    }

    @Test func padFoldsIntoMaxPoolOnlyAfterANonNegativeProducer() throws {
        var b = GraphBuilder(input: [1, 4, 4, 2])
        let relu = b.node("relu", .relu, ["x"])
        let pad = b.node("pad", .pad(pads: [0, 1, 1, 0, 0, 1, 1, 0], value: 0), [relu])
        let pool = b.node("pool", .maxPool2D(Pool2DAttributes(kernel: (3, 3), strides: (1, 1))), [pad])
        let result = try runPass(FoldPad(), b.finish(pool))
        #expect(opCounts(result.graph) == ["ReLU": 1, "MaxPool2D": 1])

        // Without the ReLU a zero pad can beat negative inputs: folding would change results.
        var c = GraphBuilder(input: [1, 4, 4, 2])
        let pad2 = c.node("pad", .pad(pads: [0, 1, 1, 0, 0, 1, 1, 0], value: 0), ["x"])
        let pool2 = c.node("pool", .maxPool2D(Pool2DAttributes(kernel: (3, 3), strides: (1, 1))), [pad2])
        #expect(try FoldPad().run(c.finish(pool2)).changed == false)
    }

    @Test func padIsNotFoldedWhenItWouldChangeResults() throws {
        func unchanged(_ pads: [Int], value: Float, _ consumer: Operation, reluFirst: Bool = false) throws -> Bool {
            var b = GraphBuilder(input: [1, 4, 4, 2])
            let source = reluFirst ? b.node("relu", .relu, ["x"]) : "x"
            let pad = b.node("pad", .pad(pads: pads, value: value), [source])
            var inputs = [pad]
            if case .conv2D = consumer { inputs.append(b.constant("w", [2, 1, 1, 2 + pads[3] + pads[7]])) }
            let out = b.node("op", consumer, inputs)
            return try !FoldPad().run(b.finish(out)).changed
        }
        let spatial = [0, 1, 1, 0, 0, 1, 1, 0]
        #expect(try unchanged(spatial, value: 0.5, .conv2D(Conv2DAttributes())), "non-zero pad value into Conv")
        #expect(try unchanged([0, 0, 0, 1, 0, 0, 0, 1], value: 0, .conv2D(Conv2DAttributes())), "channel padding")
        #expect(try unchanged(spatial, value: 0, .averagePool2D(Pool2DAttributes(kernel: (2, 2)))),
                "average pool that excludes padding from the divisor")
        #expect(try unchanged(spatial, value: 1, .maxPool2D(Pool2DAttributes(kernel: (2, 2))), reluFirst: true),
                "pad value above the ReLU bound")

        var b = GraphBuilder(input: [1, 4, 4, 2])
        let pad = b.node("pad", .pad(pads: spatial, value: 0), ["x"])
        let conv = b.node("conv", .conv2D(Conv2DAttributes()), [pad, b.constant("w", [2, 1, 1, 2])])
        #expect(try !FoldPad().run(b.finish(conv, pad)).changed, "padded value is also a graph output")
    }
}
