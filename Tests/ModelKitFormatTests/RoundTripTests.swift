import ModelKitCore
import Testing
@testable import ModelKitFormat

@Suite("Protobuf mapping round trip")
struct RoundTripTests {
    @Test("a model with every op kind round-trips exactly")
    func everyOpModel() throws {
        let model = SampleModels.everyOp()
        let decoded = try ModelFile.decode(try ModelFile.encode(model))
        #expect(decoded == model)
        // Field by field too, so a failure says what differs.
        #expect(decoded.graph.nodes == model.graph.nodes)
        #expect(decoded.graph.inputs == model.graph.inputs)
        #expect(decoded.graph.outputs == model.graph.outputs)
        #expect(decoded.graph.initializers == model.graph.initializers)
        #expect(decoded.metadata == model.metadata)
        #expect(decoded.kind == .model)
        #expect(decoded.training == nil)
    }

    @Test("the every-op model really covers every op kind")
    func everyOpCoverage() {
        let names = Set(SampleModels.everyOp().graph.nodes.map { $0.operation.name })
        #expect(names == ["Conv2D", "Dense", "MaxPool2D", "AveragePool2D", "GlobalAveragePool", "ReLU", "Clip", "LeakyReLU",
                          "Sigmoid", "Tanh", "HardSwish", "Softmax", "Flatten", "Reshape", "Transpose", "Add", "Mul",
                          "Concat", "Pad", "BatchNormalization", "Dropout"])
    }

    @Test("a checkpoint with training state round-trips exactly")
    func checkpoint() throws {
        let model = SampleModels.checkpoint()
        let decoded = try ModelFile.decode(try ModelFile.encode(model))
        #expect(decoded.kind == .checkpoint)
        #expect(decoded.training == model.training)
        #expect(decoded.training?.metricsHistory[1].validationLoss == nil)
        #expect(decoded.training?.metricsHistory[1].validationAccuracy == 0.0)
        #expect(decoded == model)
    }

    static let paddings: [Padding] = [.valid, .same, .explicit(top: 0, left: 1, bottom: 2, right: 3)]
    static let activations: [FusedActivation] = [.none, .relu, .relu6, .clip(min: -0.5, max: 0.25), .leakyRelu(alpha: 0.01)]

    @Test("Conv2D attributes round-trip", arguments: paddings, activations)
    func convAttributes(padding: Padding, activation: FusedActivation) throws {
        var rng = SplitMix64(seed: 3)
        let attributes = Conv2DAttributes(strides: (2, 1), dilations: (1, 2), padding: padding, groups: 2, activation: activation)
        let model = SampleModels.small(
            weight: nil,
            nodes: [
                Node(name: "reshape", operation: .reshape(shape: [-1, 1, 1, 4]), inputs: ["x"], outputs: ["image"]),
                Node(name: "conv", operation: .conv2D(attributes), inputs: ["image", "conv.w"], outputs: ["conv.out"]),
                Node(name: "flat", operation: .flatten(axis: 1), inputs: ["conv.out"], outputs: ["y"]),
            ])
        var withWeight = model
        withWeight.graph.initializers["conv.w"] = SampleModels.tensor([4, 1, 1, 2], &rng)
        let decoded = try ModelFile.decode(try ModelFile.encode(withWeight))
        #expect(decoded.graph.nodes[1].operation == .conv2D(attributes))
        #expect(decoded == withWeight)
    }

    static let poolPaddings: [Padding] = [.valid, .same, .explicit(top: 0, left: 1, bottom: 2, right: 1)]

    @Test("Pool attributes round-trip", arguments: poolPaddings, [false, true])
    func poolAttributes(padding: Padding, countIncludePad: Bool) throws {
        let attributes = Pool2DAttributes(kernel: (3, 2), strides: (1, 2), padding: padding, countIncludePad: countIncludePad)
        for op in [Operation.maxPool2D(attributes), .averagePool2D(attributes)] {
            let model = Model(graph: Graph(
                inputs: [ValueInfo(name: "x", shape: [1, 6, 6, 2])], outputs: ["y"],
                nodes: [Node(name: "pool", operation: op, inputs: ["x"], outputs: ["y"])]))
            #expect(try ModelFile.decode(try ModelFile.encode(model)) == model)
        }
    }

    @Test("float data is bit-exact, NaN payloads included")
    func bitExactFloats() throws {
        let patterns: [UInt32] = [0x7FC0_0001, 0xFFC1_2345, 0x7F80_0001, 0x8000_0000, 0x0000_0001, 0x3EAA_AAAB]
        var model = SampleModels.small()
        model.graph.initializers["nan.payloads"] = Tensor(shape: [6], floats: patterns.map { Float(bitPattern: $0) })
        let decoded = try ModelFile.decode(try ModelFile.encode(model))
        #expect(decoded.graph.initializers["nan.payloads"]?.floats?.map(\.bitPattern) == patterns)
    }

    @Test("encoding is deterministic: map order does not leak into the bytes")
    func deterministic() throws {
        let a = try ModelFile.encode(SampleModels.everyOp())
        let b = try ModelFile.encode(SampleModels.everyOp())
        #expect(a == b)
    }

    @Test("hand-written protobuf with the documented field numbers decodes as expected")
    func wireFieldNumbers() throws {
        // ModelFile{kind=1, graph{inputs[ValueInfo{name, dtype=FLOAT32, dims}], outputs, nodes[Node{..., relu=15}]}}
        var input = ProtoWriter()
        input.string(1, "x")
        input.int(2, 1)
        input.packedInts(3, [-1, 4])
        var node = ProtoWriter()
        node.string(1, "act")
        node.string(2, "x")
        node.string(3, "y")
        node.message(15, ProtoWriter())
        var leaky = ProtoWriter()
        leaky.float(1, 0.5)
        var node2 = ProtoWriter()
        node2.string(1, "leaky")
        node2.string(2, "y")
        node2.string(3, "z")
        node2.message(17, leaky)
        var graph = ProtoWriter()
        graph.message(1, input)
        graph.string(2, "z")
        graph.message(3, node)
        graph.message(3, node2)
        var file = ProtoWriter()
        file.int(1, 1)
        file.message(2, graph)
        let model = try ModelFile.decode(try ModelFile.container(payload: file.bytes))
        #expect(model.graph.inputs == [ValueInfo(name: "x", shape: [-1, 4])])
        #expect(model.graph.nodes == [Node(name: "act", operation: .relu, inputs: ["x"], outputs: ["y"]),
                                      Node(name: "leaky", operation: .leakyRelu(alpha: 0.5), inputs: ["y"], outputs: ["z"])])
    }

    @Test("unknown fields from a newer minor version are ignored")
    func unknownFieldsIgnored() throws {
        var payload = try ProtoEncoder.encode(SampleModels.small())
        var extra = ProtoWriter()
        extra.string(500, "a field from the future")
        extra.int(501, 7)
        payload.append(contentsOf: extra.bytes)
        #expect(try ModelFile.decode(try ModelFile.container(payload: payload)) == SampleModels.small())
    }
}
