import Testing
import ModelKitCore
import ModelKitRuntime
@testable import ModelKitONNX

/// Small models written byte by byte (see ProtoWriter) for the cases the fixtures do not cover.
@Suite struct ONNXHandBuiltTests {
    @Test func minimalModelImportsWithNHWCInput() throws {
        let model = try ONNXImporter.importModel(bytes: ONNXBuilder.model(graph: ONNXBuilder.relu))
        #expect(model.graph.inputs == [ValueInfo(name: "x", shape: [1, 4, 4, 3])])
        #expect(model.graph.outputs == ["y"])
        // Relu keeps NHWC; the 4-D output is transposed back to NCHW under the output's name.
        #expect(model.graph.nodes.map(\.operation) == [.relu, .transpose(permutation: [0, 3, 1, 2])])
        #expect(model.graph.nodes.last?.outputs == ["y"])
        #expect(model.metadata.properties["onnx.opset"] == "17")
    }

    @Test(arguments: [Int64(12), 22])
    func opsetOutsideRange(_ opset: Int64) {
        #expect(throws: ONNXError.unsupportedOpset(version: opset, supported: 13...21)) {
            try ONNXImporter.importModel(bytes: ONNXBuilder.model(opset: opset, graph: ONNXBuilder.relu))
        }
    }

    @Test(arguments: [Int64(13), 21])
    func opsetAtTheEdgesIsAccepted(_ opset: Int64) throws {
        _ = try ONNXImporter.importModel(bytes: ONNXBuilder.model(opset: opset, graph: ONNXBuilder.relu))
    }

    @Test func missingOpset() {
        #expect(throws: ONNXError.missingOpset) {
            try ONNXImporter.importModel(bytes: ONNXBuilder.model(opset: nil, graph: ONNXBuilder.relu))
        }
    }

    @Test func modelWithoutGraphIsMalformed() {
        var w = ProtoWriter()
        w.int(1, 8)
        #expect(throws: ONNXError.malformed(reason: "the model has no graph")) {
            try ONNXImporter.importModel(bytes: w.bytes)
        }
    }

    @Test func symbolicBatchBecomesDynamic() throws {
        let bytes = ONNXBuilder.model(input: [.parameter("batch"), .value(3), .value(4), .value(4)], graph: ONNXBuilder.relu)
        let model = try ONNXImporter.importModel(bytes: bytes)
        #expect(model.graph.inputs[0].shape == Shape([-1, 4, 4, 3]))
        let session = try Session(model: model)
        let out = try session.run(Tensor(shape: [3, 4, 4, 3], floats: (0..<144).map { Float($0) - 70 }))
        #expect(out.shape == Shape([3, 3, 4, 4]))
    }

    @Test func symbolicDimensionOutsideBatchIsRejected() {
        let bytes = ONNXBuilder.model(input: [.value(1), .value(3), .parameter("height"), .value(4)], graph: ONNXBuilder.relu)
        #expect(throws: ONNXError.invalidGraphInput(
            name: "x", reason: "dimension 2 is symbolic; only the first (batch) dimension may be dynamic")) {
            try ONNXImporter.importModel(bytes: bytes)
        }
    }

    @Test func nonFloatInputIsRejected() {
        let bytes = ONNXBuilder.model(inputType: 7, graph: ONNXBuilder.relu)
        #expect(throws: ONNXError.invalidGraphInput(name: "x", reason: "has element type INT64; only FLOAT inputs are supported")) {
            try ONNXImporter.importModel(bytes: bytes)
        }
    }

    @Test func hugeDeclaredTensorIsRefusedBeforeAllocation() throws {
        let bytes = ONNXBuilder.model { g in
            g.message(5) { ONNXBuilder.initializer(&$0, name: "w", dims: [1 << 30, 1 << 30], values: [1]) }
            ONNXBuilder.relu(&g)
        }
        let error = try #require(throws: ONNXError.self) { try ONNXImporter.importModel(bytes: bytes) }
        #expect(error == .limitExceeded(what: "element count of tensor 'w'", value: 1 << 60, limit: Limits.default.maxTensorElements))
    }

    @Test func rawDataLengthMismatch() {
        let bytes = ONNXBuilder.model { g in
            g.message(5) { ONNXBuilder.initializer(&$0, name: "w", dims: [2, 3, 1, 1], values: [1, 2, 3]) }
            g.message(1) { ONNXBuilder.node(&$0, op: "Conv", name: "conv", inputs: ["x", "w"], outputs: ["y"]) }
        }
        #expect(throws: ONNXError.invalidTensor(name: "w", reason: "raw_data has 12 bytes, expected 24 for 6 FLOAT values")) {
            try ONNXImporter.importModel(bytes: bytes)
        }
    }

    @Test func undefinedInputNamesTheNode() {
        let bytes = ONNXBuilder.model { g in
            g.message(1) { ONNXBuilder.node(&$0, op: "Add", name: "sum", inputs: ["x", "ghost"], outputs: ["y"]) }
        }
        #expect(throws: ONNXError.invalidNode(
            node: "sum", op: "Add",
            reason: "input 'ghost' is not defined before this node (graph inputs, initializers and earlier nodes)")) {
            try ONNXImporter.importModel(bytes: bytes)
        }
    }

    @Test func gemmWithRuntimeWeightsIsUnsupported() {
        let bytes = ONNXBuilder.model(input: [.value(2), .value(4)]) { g in
            g.message(1) { ONNXBuilder.node(&$0, op: "Gemm", name: "fc", inputs: ["x", "x"], outputs: ["y"]) }
        }
        #expect(throws: ONNXError.unsupportedNode(
            node: "fc", op: "Gemm", reason: "input 1 ('x') must be a constant (an initializer or folded value)")) {
            try ONNXImporter.importModel(bytes: bytes)
        }
    }

    @Test func customDomainOpsAreListedWithTheirDomain() {
        let bytes = ONNXBuilder.model { g in
            g.message(1) { ONNXBuilder.node(&$0, op: "FusedConv", name: "fc1", inputs: ["x"], outputs: ["t"], domain: "com.microsoft") }
            g.message(1) { ONNXBuilder.node(&$0, op: "NonMaxSuppression", name: "nms", inputs: ["t"], outputs: ["y"]) }
        }
        #expect(throws: ONNXError.unsupportedOperators([
            UnsupportedONNXOperator(opType: "com.microsoft:FusedConv", nodes: ["fc1"]),
            UnsupportedONNXOperator(opType: "NonMaxSuppression", nodes: ["nms"]),
        ])) {
            try ONNXImporter.importModel(bytes: bytes)
        }
    }

    /// MaxPool with ceil_mode=1 has no modelkit form; the error names the node and the attribute.
    @Test func unsupportedAttributeValueNamesTheNode() {
        let bytes = ONNXBuilder.model { g in
            g.message(1) {
                ONNXBuilder.node(&$0, op: "MaxPool", name: "pool", inputs: ["x"], outputs: ["y"], attributes: [
                    .init(name: "kernel_shape", ints: [2, 2]), .init(name: "ceil_mode", int: 1),
                ])
            }
        }
        #expect(throws: ONNXError.unsupportedNode(node: "pool", op: "MaxPool", reason: "ceil_mode=1")) {
            try ONNXImporter.importModel(bytes: bytes)
        }
    }

    /// Invalid attribute values reach modelkit's shape checks and come back as node errors.
    @Test func negativePadsAreRejected() throws {
        let bytes = ONNXBuilder.model { g in
            g.message(1) {
                ONNXBuilder.node(&$0, op: "MaxPool", name: "pool", inputs: ["x"], outputs: ["y"], attributes: [
                    .init(name: "kernel_shape", ints: [2, 2]), .init(name: "pads", ints: [-1, 0, 0, Int64.min]),
                ])
            }
        }
        let error = try #require(throws: ONNXError.self) { try ONNXImporter.importModel(bytes: bytes) }
        guard case .invalidNode(node: "pool", op: "MaxPool", _) = error else {
            Issue.record("expected invalidNode for 'pool', got \(error)")
            return
        }
    }

    /// Reshape or Flatten of a 4-D tensor not read by a Dense (here: a graph output): the NHWC
    /// data is transposed back to NCHW first.
    @Test(arguments: ["Reshape", "Flatten"])
    func flatteningAnNHWCTensorUsesONNXOrder(_ op: String) throws {
        let bytes = ONNXBuilder.model(input: [.value(1), .value(2), .value(2), .value(3)]) { g in
            g.message(5) { w in
                w.int(1, 2)
                w.int(2, 7)
                w.string(8, "shape")
                w.data(9, [1, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0])
            }
            g.message(1) { ONNXBuilder.node(&$0, op: "Relu", name: "relu", inputs: ["x"], outputs: ["r"]) }
            g.message(1) {
                ONNXBuilder.node(&$0, op: op, name: "flat", inputs: op == "Reshape" ? ["r", "shape"] : ["r"], outputs: ["y"])
            }
        }
        let model = try ONNXImporter.importModel(bytes: bytes)
        let session = try Session(model: model)
        // NCHW values 0..<12 fed as NHWC must come back in NCHW order.
        let nchw = (0..<12).map(Float.init)
        let nhwc = permute(nchw, shape: [1, 2, 2, 3], [0, 2, 3, 1])
        let out = try session.run(Tensor(shape: Shape(nhwc.shape), floats: nhwc.data))
        #expect(out.shape == Shape([1, 12]))
        #expect(out.floats == nchw)
        #expect(model.graph.nodes.contains { $0.operation == .transpose(permutation: [0, 3, 1, 2]) })
    }
}
