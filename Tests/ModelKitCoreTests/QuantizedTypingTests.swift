import ModelKitCore
import Testing

/// The int8 typing rules: what ShapeInference accepts and what it rejects, with the rule named.
@Suite("int8 typing in shape inference")
struct QuantizedTypingTests {
    static let activation = QuantizationParameters(scale: 0.1, zeroPoint: -3)

    static func int8(_ name: String, _ dims: [Int], _ q: QuantizationParameters? = activation) -> ValueInfo {
        ValueInfo(name: name, dtype: .int8, shape: Shape(dims), quantization: q)
    }

    static func weight(_ dims: [Int], axis: Int? = 0, zeroPoint: Int32 = 0) -> ValueInfo {
        ValueInfo(name: "w", dtype: .int8, shape: Shape(dims),
                  quantization: QuantizationParameters(scales: [Float](repeating: 0.01, count: axis == nil ? 1 : dims[0]),
                                                       zeroPoints: [Int32](repeating: zeroPoint, count: axis == nil ? 1 : dims[0]),
                                                       axis: axis))
    }

    func infer(_ op: Operation, _ inputs: [ValueInfo], output: QuantizationParameters? = activation) throws -> ValueInfo {
        try ShapeInference.infer(node: Node(name: "n", operation: op, inputs: inputs.map(\.name), outputs: ["y"]),
                                 inputs: inputs, outputQuantization: output)
    }

    @Test func quantizeAndDequantizeSwitchDType() throws {
        let q = try infer(.quantizeLinear, [ValueInfo(name: "x", shape: Shape([2, 4]))])
        #expect(q.dtype == .int8 && q.quantization == Self.activation && q.shape == Shape([2, 4]))
        let f = try infer(.dequantizeLinear, [Self.int8("x", [2, 4])], output: nil)
        #expect(f.dtype == .float32 && f.quantization == nil)
    }

    @Test func int8ConvAndDenseNeedPerChannelWeights() throws {
        let conv = try infer(.conv2D(Conv2DAttributes(activation: .relu)),
                             [Self.int8("x", [1, 5, 5, 2]), Self.weight([4, 3, 3, 2]),
                              ValueInfo(name: "b", dtype: .int32, shape: Shape([4]))])
        #expect(conv.dtype == .int8 && conv.shape == Shape([1, 3, 3, 4]))
        #expect(throws: GraphError.self) { try infer(.dense(activation: .none), [Self.int8("x", [1, 3]), Self.weight([2, 3], axis: nil)]) }
        #expect(throws: GraphError.self) { try infer(.dense(activation: .none), [Self.int8("x", [1, 3]), Self.weight([2, 3], zeroPoint: 1)]) }
        #expect(throws: GraphError.self) {
            try infer(.dense(activation: .none), [Self.int8("x", [1, 3]), Self.weight([2, 3]),
                                                  ValueInfo(name: "b", dtype: .float32, shape: Shape([2]))])
        }
        #expect(throws: GraphError.self) { try infer(.dense(activation: .leakyRelu(alpha: 0.1)), [Self.int8("x", [1, 3]), Self.weight([2, 3])]) }
    }

    @Test func everyInt8ValueNeedsPerTensorParameters() {
        // No output parameters.
        #expect(throws: GraphError.self) { try infer(.quantizeLinear, [ValueInfo(name: "x", shape: Shape([2]))], output: nil) }
        // Input without parameters.
        #expect(throws: GraphError.self) { try infer(.maxPool2D(Pool2DAttributes(kernel: (2, 2))), [Self.int8("x", [1, 4, 4, 1], nil)]) }
        // Per-channel activation.
        let perChannel = QuantizationParameters(scales: [0.1, 0.2], zeroPoints: [0, 0], axis: 3)
        #expect(throws: GraphError.self) { try infer(.dequantizeLinear, [Self.int8("x", [1, 1, 1, 2], perChannel)], output: nil) }
        // Float output with parameters.
        #expect(throws: GraphError.self) { try infer(.relu, [ValueInfo(name: "x", shape: Shape([2]))]) }
    }

    @Test func passThroughOpsKeepTheirInputParameters() throws {
        let pooled = try infer(.maxPool2D(Pool2DAttributes(kernel: (2, 2))), [Self.int8("x", [1, 4, 4, 1])])
        #expect(pooled.quantization == Self.activation && pooled.shape == Shape([1, 2, 2, 1]))
        let other = QuantizationParameters(scale: 0.2, zeroPoint: 0)
        #expect(throws: GraphError.self) { try infer(.flatten(axis: 1), [Self.int8("x", [1, 4, 4, 1])], output: other) }
        #expect(throws: GraphError.self) {
            try infer(.concat(axis: 1), [Self.int8("a", [1, 2]), Self.int8("b", [1, 2], other)])
        }
        let joined = try infer(.concat(axis: 1), [Self.int8("a", [1, 2]), Self.int8("b", [1, 3])])
        #expect(joined.shape == Shape([1, 5]))
    }

    @Test func opsWithoutInt8KernelsRejectInt8() {
        #expect(throws: GraphError.unsupportedDType(node: "n", op: "Softmax", dtype: .int8)) {
            try infer(.softmax(axis: -1), [Self.int8("x", [1, 10])], output: nil)
        }
        #expect(throws: GraphError.unsupportedDType(node: "n", op: "Sigmoid", dtype: .int8)) {
            try infer(.sigmoid, [Self.int8("x", [1, 10])])
        }
        // Mixed float input and int8 weight.
        #expect(throws: GraphError.self) {
            try infer(.dense(activation: .none), [ValueInfo(name: "x", shape: Shape([1, 3])), Self.weight([2, 3])], output: nil)
        }
    }
}
