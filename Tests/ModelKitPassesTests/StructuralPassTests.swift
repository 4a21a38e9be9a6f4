import ModelKitCore
import ModelKitPasses
import Testing

@Suite("Passes: activation fusion, identities, constant folding, dead code, pipeline")
struct StructuralPassTests {
    @Test(arguments: [Operation.relu, .clip(min: 0, max: 6), .clip(min: -1, max: 0.5), .leakyRelu(alpha: 0.1)])
    func activationFusesIntoConvDenseAndAdd(activation: Operation) throws {
        var b = GraphBuilder(input: [-1, 4, 4, 2])
        let conv = b.node("conv", .conv2D(Conv2DAttributes()), ["x", b.constant("w", [2, 1, 1, 2]), b.constant("b", [2])])
        let act1 = b.node("act1", activation, [conv])
        let sum = b.node("sum", .add(activation: .none), [act1, "x"])
        let act2 = b.node("act2", activation, [sum])
        let flat = b.node("flat", .flatten(axis: 1), [act2])
        let fc = b.node("fc", .dense(activation: .none), [flat, b.constant("fc.w", [3, 32])])
        let act3 = b.node("act3", activation, [fc])
        let result = try runPass(FuseActivation(), b.finish(act3))
        #expect(result.rewrites == 3)
        #expect(opCounts(result.graph) == ["Conv2D": 1, "Add": 1, "Flatten": 1, "Dense": 1])
        #expect(result.graph.outputs == ["act3"])
        #expect(result.graph.nodes.allSatisfy { $0.operation.fusedActivation != FusedActivation.none })
    }

    @Test func activationIsNotFusedAcrossASharedValueOrOntoAnotherActivation() throws {
        var b = GraphBuilder(input: [1, 3])
        let fc = b.node("fc", .dense(activation: .none), ["x", b.constant("w", [3, 3])])
        let relu = b.node("relu", .relu, [fc])
        let other = b.node("other", .sigmoid, [fc])
        #expect(try FuseActivation().run(b.finish(relu, other)).changed == false)

        var c = GraphBuilder(input: [1, 3])
        let fused = c.node("fc", .dense(activation: .relu), ["x", c.constant("w", [3, 3])])
        let lastC = c.node("clip", .clip(min: 0, max: 6), [fused])
        #expect(try FuseActivation().run(c.finish(lastC)).changed == false)

        var d = GraphBuilder(input: [1, 3])
        let fc2 = d.node("fc", .dense(activation: .none), ["x", d.constant("w", [3, 3])])
        let lastD = d.node("relu", .relu, [fc2])
        #expect(try FuseActivation().run(d.finish(lastD, fc2)).changed == false,
                "pre-activation value is a graph output")
    }

    @Test func identitiesAreRemoved() throws {
        var b = GraphBuilder(input: [-1, 4, 4, 3])
        let drop = b.node("drop", .dropout(rate: 0.5), ["x"])
        let same = b.node("same", .reshape(shape: [0, 4, 4, 3]), [drop])
        let t1 = b.node("t1", .transpose(permutation: [0, 3, 1, 2]), [same])
        let t2 = b.node("t2", .transpose(permutation: [0, 2, 3, 1]), [t1])
        let r1 = b.node("r1", .reshape(shape: [0, 16, 3]), [t2])
        let r2 = b.node("r2", .flatten(axis: 1), [r1])
        let out = b.node("out", .dense(activation: .none), [r2, b.constant("w", [2, 48])])
        let result = try runPass(RemoveIdentities(), b.finish(out))
        #expect(opCounts(result.graph) == ["Reshape": 1, "Dense": 1])
        // The merged reshape keeps a dynamic batch: batch 2 runs too (checked by runPass) and the shape uses -1.
        #expect(result.graph.nodes.contains { $0.operation == .reshape(shape: [-1, 48]) })
    }

    @Test func transposePairThatIsNotTheIdentityBecomesOne() throws {
        var b = GraphBuilder(input: [1, 2, 3, 4])
        let t1 = b.node("t1", .transpose(permutation: [0, 3, 1, 2]), ["x"])
        let t2 = b.node("t2", .transpose(permutation: [0, 3, 1, 2]), [t1])
        let result = try runPass(RemoveIdentities(), b.finish(t2))
        #expect(opCounts(result.graph) == ["Transpose": 1])
    }

    @Test func identityThatIsAGraphOutputStaysWhenItsInputIsShared() throws {
        var b = GraphBuilder(input: [1, 3])
        let fc = b.node("fc", .dense(activation: .none), ["x", b.constant("w", [3, 3])])
        let drop = b.node("drop", .dropout(rate: 0.1), [fc])
        let other = b.node("other", .relu, [fc])
        #expect(try RemoveIdentities().run(b.finish(drop, other)).changed == false)
        // With a single reader the producer takes over the output name instead.
        var c = GraphBuilder(input: [1, 3])
        let fc2 = c.node("fc", .dense(activation: .none), ["x", c.constant("w", [3, 3])])
        let lastC = c.node("drop", .dropout(rate: 0.1), [fc2])
        let result = try runPass(RemoveIdentities(), c.finish(lastC))
        #expect(opCounts(result.graph) == ["Dense": 1])
        #expect(result.graph.nodes[0].outputs == ["drop"])
        // A transpose pair across a value with two readers is kept.
        var d = GraphBuilder(input: [1, 2, 3, 4])
        let t1 = d.node("t1", .transpose(permutation: [0, 3, 1, 2]), ["x"])
        let t2 = d.node("t2", .transpose(permutation: [0, 2, 3, 1]), [t1])
        #expect(try RemoveIdentities().run(d.finish(t2, t1)).changed == false)
    }

    @Test func constantFoldingEvaluatesConstantSubgraphs() throws {
        var b = GraphBuilder(input: [-1, 3])
        let w = b.constant("w0", [3, 3])
        let wt = b.node("wt", .transpose(permutation: [1, 0]), [w])
        let scaled = b.node("scaled", .mul, [wt, b.constant("two", [1], values: [2])])
        let fc = b.node("fc", .dense(activation: .none), ["x", scaled])
        let result = try runPass(ConstantFolding(), b.finish(fc))
        #expect(result.rewrites == 2)
        #expect(opCounts(result.graph) == ["Dense": 1])
        let folded = try #require(result.graph.initializers["scaled"]?.floats)
        let original = b.graph.initializers["w0"]!.floats!
        #expect(folded[1] == 2 * original[3], "transpose then multiply, evaluated exactly")
    }

    @Test func constantFoldingKeepsGraphOutputsAndRuntimeNodes() throws {
        var b = GraphBuilder(input: [1, 3])
        let c = b.node("c", .relu, [b.constant("k", [1, 3])])
        let sum = b.node("sum", .add(activation: .none), ["x", c])
        let graph = b.finish(sum, c)
        #expect(try ConstantFolding().run(graph).changed == false)
    }

    @Test func deadNodesAndInitializersAreRemoved() throws {
        var b = GraphBuilder(input: [1, 3])
        let fc = b.node("fc", .dense(activation: .none), ["x", b.constant("w", [3, 3])])
        b.node("unused", .sigmoid, [fc])
        b.node("unused2", .relu, ["unused"])
        b.constant("orphan", [7])
        let result = try runPass(RemoveDeadCode(), b.finish(fc))
        #expect(result.rewrites == 3)
        #expect(opCounts(result.graph) == ["Dense": 1])
        #expect(result.graph.initializers.keys.sorted() == ["w"])
        #expect(try RemoveDeadCode().run(result.graph).changed == false)
    }

    @Test func pipelineRunsEveryPassToAFixedPoint() throws {
        var b = GraphBuilder(input: [-1, 6, 6, 2])
        let drop = b.node("drop", .dropout(rate: 0.2), ["x"])
        let pad = b.node("pad", .pad(pads: [0, 1, 1, 0, 0, 1, 1, 0], value: 0), [drop])
        let conv = b.node("conv", .conv2D(Conv2DAttributes()), [pad, b.constant("w", [4, 3, 3, 2])])
        let bn = b.batchNorm("bn", conv, channels: 4)
        let relu = b.node("relu", .relu, [bn])
        let flat = b.node("flat", .flatten(axis: 1), [relu])
        let fc = b.node("fc", .dense(activation: .none), [flat, b.constant("fc.w", [3, 144])])
        let out = b.node("scale", .mul, [fc, b.constant("k", [3])])
        let graph = b.finish(out)
        let (optimized, rewrites) = try PassPipeline.standard.run(graph)
        try expectSameOutputs(graph, optimized)
        #expect(opCounts(optimized) == ["Conv2D": 1, "Flatten": 1, "Dense": 1])
        #expect(optimized.nodes.first?.operation.fusedActivation == .relu)
        #expect(rewrites["fold-batchnorm"] == 1 && rewrites["fold-pad"] == 1 && rewrites["fuse-activation"] == 1)
        #expect(optimized.parameterCount < graph.parameterCount)
    }

    @Test func pipelineSelectsPassesByNameAndRejectsUnknownOnes() throws {
        let pipeline = try PassPipeline(names: ["dead-code", "fuse-activation"])
        #expect(pipeline.passes.map(\.name) == ["dead-code", "fuse-activation"])
        #expect(throws: PassError.unknownPass(name: "nope", known: PassPipeline.passNames)) {
            try PassPipeline(names: ["nope"])
        }
        #expect(Set(PassPipeline.passNames).count == PassPipeline.allPasses.count)
    }
}
