import ModelKitCore
import Testing
@testable import ModelKitFormat

/// Checks made while mapping the protobuf message and while validating the model, beyond the
/// corrupt-file corpus.
@Suite("Decode validation")
struct ValidationTests {
    /// ModelFile{kind, graph{input x[-1,4], output "y", node, initializers}} written by hand.
    static func payload(kind: Int64 = 1, node: ProtoWriter? = nil, initializers: [ProtoWriter] = [],
                        inputDType: Int64 = 1, training: ProtoWriter? = nil) -> [UInt8] {
        var input = ProtoWriter()
        input.string(1, "x")
        input.int(2, inputDType)
        input.packedInts(3, [-1, 4])
        var relu = ProtoWriter()
        relu.string(1, "act")
        relu.string(2, "x")
        relu.string(3, "y")
        relu.message(15, ProtoWriter())
        var graph = ProtoWriter()
        graph.message(1, input)
        graph.string(2, "y")
        graph.message(3, node ?? relu)
        for tensor in initializers { graph.message(4, tensor) }
        var file = ProtoWriter()
        file.int(1, kind)
        file.message(2, graph)
        if let training { file.message(4, training) }
        return file.bytes
    }

    static func tensor(_ name: String, dtype: Int64 = 1, dims: [Int64], dataBytes: Int) -> ProtoWriter {
        var t = ProtoWriter()
        t.string(1, name)
        t.int(2, dtype)
        t.packedInts(3, dims)
        t.bytesField(4, [UInt8](repeating: 0, count: dataBytes))
        return t
    }

    static func decodeError(_ payload: [UInt8], limits: Limits = .default) -> FormatError? {
        TestSupport.formatError { try ModelFile.decode(try ModelFile.container(payload: payload), limits: limits) }
    }

    static func encodeError(_ model: Model, limits: Limits = .default) -> FormatError? {
        TestSupport.formatError { try ModelFile.encode(model, limits: limits) }
    }

    @Test("the hand-written base payload is valid")
    func basePayload() throws {
        let model = try ModelFile.decode(try ModelFile.container(payload: Self.payload()))
        #expect(model.graph.nodes.map(\.operation) == [.relu])
    }

    @Test("unknown or unset kind", arguments: [Int64(0), 3, 1000])
    func unknownKind(kind: Int64) {
        let error = Self.decodeError(Self.payload(kind: kind))
        guard case .invalidKind(let reason) = error else {
            Issue.record("expected invalidKind, got \(String(describing: error))")
            return
        }
        #expect(reason.contains(kind == 0 ? "not set" : "unknown ModelFile.kind \(kind)"))
    }

    @Test("unknown dtype names the tensor", arguments: [Int64(0), 5, 99])
    func unknownDType(dtype: Int64) {
        let error = Self.decodeError(Self.payload(initializers: [Self.tensor("w", dtype: dtype, dims: [2], dataBytes: 8)]))
        #expect(error == .invalidTensor(tensor: "initializer 'w'", reason: "unknown dtype \(dtype)"))
        let inputError = Self.decodeError(Self.payload(inputDType: dtype))
        #expect(inputError == .invalidTensor(tensor: "graph input 'x'", reason: "unknown dtype \(dtype)"))
    }

    @Test("duplicate initializer names")
    func duplicateInitializer() {
        let w = Self.tensor("w", dims: [2], dataBytes: 8)
        #expect(Self.decodeError(Self.payload(initializers: [w, w])) == .duplicateName(what: "initializer", name: "w"))
    }

    @Test("rank above the limit is rejected before building the shape")
    func rankLimit() {
        let error = Self.decodeError(Self.payload(initializers: [Self.tensor("deep", dims: Array(repeating: 1, count: 9), dataBytes: 4)]))
        #expect(error == .invalidTensor(tensor: "initializer 'deep'", reason: "rank 9 exceeds the limit of 8"))
    }

    @Test("negative dimension")
    func negativeDimension() {
        let error = Self.decodeError(Self.payload(initializers: [Self.tensor("w", dims: [2, -3], dataBytes: 0)]))
        #expect(error == .invalidTensor(tensor: "initializer 'w'", reason: "dimension 1 is -3"))
    }

    @Test("an element count that overflows Int is reported as too large")
    func overflowingCount() {
        let dims: [Int64] = [1 << 62, 1 << 62, 4]
        let error = Self.decodeError(Self.payload(initializers: [Self.tensor("w", dims: dims, dataBytes: 0)]))
        #expect(error == .tensorTooLarge(tensor: "initializer 'w'", dims: dims, limit: Limits.default.maxTensorElements))
    }

    @Test("the element limit is configurable")
    func elementLimit() {
        var limits = Limits.default
        limits.maxTensorElements = 7
        let error = Self.decodeError(Self.payload(initializers: [Self.tensor("w", dims: [2, 4], dataBytes: 32)]), limits: limits)
        #expect(error == .tensorTooLarge(tensor: "initializer 'w'", dims: [2, 4], limit: 7))
    }

    @Test("unknown padding mode and fused activation name the node")
    func unknownEnums() {
        var padding = ProtoWriter()
        padding.int(1, 9)
        var pool = ProtoWriter()
        pool.int(1, 1)
        pool.int(2, 1)
        pool.message(5, padding)
        var node = ProtoWriter()
        node.string(1, "pool")
        node.string(2, "x")
        node.string(3, "y")
        node.message(12, pool)
        #expect(Self.decodeError(Self.payload(node: node)) == .invalidNode(node: "pool", reason: "unknown padding mode 9"))

        var activation = ProtoWriter()
        activation.int(1, 4)
        var add = ProtoWriter()
        add.message(1, activation)
        var addNode = ProtoWriter()
        addNode.string(1, "sum")
        addNode.string(2, "x")
        addNode.string(2, "x")
        addNode.string(3, "y")
        addNode.message(25, add)
        #expect(Self.decodeError(Self.payload(node: addNode)) == .invalidNode(node: "sum", reason: "unknown fused activation 4"))
    }

    @Test("too many reshape dims are rejected before building the list")
    func longReshape() {
        var reshape = ProtoWriter()
        reshape.packedInts(1, Array(repeating: 1, count: 100))
        var node = ProtoWriter()
        node.string(1, "r")
        node.string(2, "x")
        node.string(3, "y")
        node.message(23, reshape)
        #expect(Self.decodeError(Self.payload(node: node))
            == .invalidNode(node: "r", reason: "reshape target has 100 values, more than 8"))
    }

    @Test("node count above the limit")
    func nodeLimit() {
        var limits = Limits.default
        limits.maxNodes = 0
        #expect(Self.decodeError(Self.payload(), limits: limits) == .invalidGraph(.tooManyNodes(count: 1, limit: 0)))
    }

    @Test("a checkpoint without training state, and a model with it")
    func kindAndTraining() {
        #expect(Self.decodeError(Self.payload(kind: 2)) == .invalidKind(reason: "a checkpoint (.mkc) must carry training state"))
        var model = SampleModels.checkpoint()
        model.kind = .model
        #expect(Self.encodeError(model)
            == .invalidKind(reason: "a model (.mkm) must not carry training state; use kind checkpoint"))
    }

    @Test("training state without an optimizer")
    func missingOptimizer() {
        var training = ProtoWriter()
        training.int(1, 1)
        #expect(Self.decodeError(Self.payload(kind: 2, training: training))
            == .invalidTrainingState(reason: "the optimizer state is missing"))
    }

    static let badQuantizations: [(QuantizationParameters, String)] = [
        (QuantizationParameters(scales: [1, 2], zeroPoints: [0], axis: 0), "2 scales but 1 zero points"),
        (QuantizationParameters(scales: [1, 2], zeroPoints: [0, 0]), "per-tensor quantization needs 1 scale, found 2"),
        (QuantizationParameters(scales: [1, 2], zeroPoints: [0, 0], axis: 0), "2 scales for axis 0 of size 3"),
        (QuantizationParameters(scales: [1], zeroPoints: [0], axis: 2), "axis 2 is out of range for rank 2"),
        (QuantizationParameters(scale: 0, zeroPoint: 0), "scale 0 is 0.0; scales must be finite and positive"),
        (QuantizationParameters(scale: .nan, zeroPoint: 0), "scale 0 is nan; scales must be finite and positive"),
        (QuantizationParameters(scale: 1, zeroPoint: 128), "zero point 0 is 128, outside the int8 range"),
    ]

    @Test("inconsistent quantization parameters", arguments: badQuantizations)
    func badQuantization(q: QuantizationParameters, reason: String) throws {
        var model = SampleModels.small()
        model.graph.initializers["q"] = Tensor(shape: [3, 2], storage: .int8([1, 2, 3, 4, 5, 6]), quantization: q)
        #expect(Self.encodeError(model) == .invalidQuantization(tensor: "initializer 'q'", reason: reason))
        // The reader finds the same problem in a file written without validation.
        let bytes = try ModelFile.encode(model, compressionLevel: 1, limits: .default, validate: false)
        #expect(TestSupport.formatError { try ModelFile.decode(bytes) }
            == .invalidQuantization(tensor: "initializer 'q'", reason: reason))
    }

    @Test("optimizer slots must name an initializer of the same shape")
    func slots() throws {
        var model = SampleModels.checkpoint()
        model.training?.optimizer.slots["m/missing"] = Tensor(shape: [1], floats: [0])
        #expect(Self.encodeError(model)
            == .invalidTensor(tensor: "optimizer slot 'm/missing'", reason: "parameter 'missing' is not an initializer"))

        model = SampleModels.checkpoint()
        model.training?.optimizer.slots["v/conv.bias"] = Tensor(shape: [5], floats: [0, 0, 0, 0, 0])
        #expect(Self.encodeError(model)
            == .invalidTensor(tensor: "optimizer slot 'v/conv.bias'", reason: "shape [5] differs from parameter 'conv.bias' [4]"))

        model = SampleModels.checkpoint()
        model.training?.optimizer.slots["m/conv.bias"] = Tensor(shape: [4], floats: [0, 0, 0])
        let bytes = try ModelFile.encode(model, compressionLevel: 1, limits: .default, validate: false)
        #expect(TestSupport.formatError { try ModelFile.decode(bytes) }
            == .dataLengthMismatch(tensor: "optimizer slot 'm/conv.bias'", expected: 16, actual: 12))
    }

    @Test("training counters must be consistent")
    func counters() {
        var model = SampleModels.checkpoint()
        model.training?.stepInEpoch = 5_000
        #expect(Self.encodeError(model)
            == .invalidTrainingState(reason: "step in epoch 5000 must be between 0 and the total step 1407"))
    }

    @Test("input normalisation must be usable")
    func normalization() {
        var model = SampleModels.small()
        model.metadata.normalization = InputNormalization(pixelScale: 1, mean: [0], std: [0])
        #expect(Self.encodeError(model)
            == .invalidMetadata(reason: "input normalisation std[0] is 0.0; it must be finite and non-zero"))
    }

    @Test("only the first dimension of a graph input may be dynamic")
    func dynamicDimensions() {
        var model = SampleModels.small()
        model.graph.inputs[0].shape = [4, -1]
        #expect(Self.encodeError(model)
            == .invalidTensor(tensor: "graph input 'x'", reason: "dimension 1 is -1; only the first may be dynamic (-1)"))
    }

    @Test("dropout rate must be in [0, 1)", arguments: [Float(1), -0.5, .nan])
    func dropoutRate(rate: Float) {
        let model = SampleModels.small(nodes: [
            Node(name: "drop", operation: .dropout(rate: rate), inputs: ["x"], outputs: ["y"]),
        ])
        #expect(Self.encodeError(model) == .invalidNode(node: "drop", reason: "dropout rate \(rate) must be in [0, 1)"))
    }

    @Test("graph errors from analysis are wrapped and keep their message")
    func graphErrors() {
        var model = SampleModels.small()
        model.graph.nodes[1].operation = .softmax(axis: 5)
        let error = Self.encodeError(model)
        #expect(error == .invalidGraph(.invalidAttribute(node: "softmax", op: "Softmax", reason: "axis 5 is out of range for rank 2")))
        #expect(error?.description == "invalid graph: node 'softmax' (Softmax): invalid attribute: axis 5 is out of range for rank 2")
    }
}
