import ModelKitCore
import Testing
@testable import ModelKitFormat

/// int8 models in the file format (1.1): ops, value quantization, int8/int32 tensors.
@Suite("int8 models in the file format")
struct Int8ModelTests {
    static func model() -> Model {
        var graph = Graph(inputs: [ValueInfo(name: "x", shape: Shape([-1, 4]))], outputs: ["y"], nodes: [
            Node(name: "q", operation: .quantizeLinear, inputs: ["x"], outputs: ["xq"]),
            Node(name: "fc", operation: .dense(activation: .relu), inputs: ["xq", "w", "b"], outputs: ["hq"]),
            Node(name: "dq", operation: .dequantizeLinear, inputs: ["hq"], outputs: ["h"]),
            Node(name: "sm", operation: .softmax(axis: -1), inputs: ["h"], outputs: ["y"]),
        ])
        graph.initializers["w"] = Tensor(shape: Shape([3, 4]), storage: .int8([1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -127]),
                                         quantization: QuantizationParameters(scales: [0.1, 0.2, 0.3], zeroPoints: [0, 0, 0], axis: 0))
        graph.initializers["b"] = Tensor(shape: Shape([3]), storage: .int32([100, -200, 70000]),
                                         quantization: QuantizationParameters(scales: [0.001, 0.002, 0.003], zeroPoints: [0, 0, 0], axis: 0))
        graph.valueQuantization = ["xq": QuantizationParameters(scale: 0.01, zeroPoint: -128),
                                   "hq": QuantizationParameters(scale: 0.05, zeroPoint: -128)]
        return Model(graph: graph)
    }

    @Test func roundTripsExactly() throws {
        let model = Self.model()
        let bytes = try ModelFile.encode(model)
        let decoded = try ModelFile.decode(bytes)
        #expect(decoded == model)
        #expect(decoded.graph.valueQuantization == model.graph.valueQuantization)
        #expect(try ModelFile.decodeWithInfo(bytes).info.version == FormatVersion(major: 1, minor: 1))
    }

    @Test func quantizationOfAValueNoNodeProducesIsRejected() {
        var model = Self.model()
        model.graph.valueQuantization["nowhere"] = QuantizationParameters(scale: 1, zeroPoint: 0)
        #expect(throws: FormatError.invalidQuantization(tensor: "value 'nowhere'", reason: "no node produces this value")) {
            try ModelFile.encode(model)
        }
    }

    @Test func badValueParametersAreRejected() {
        var model = Self.model()
        model.graph.valueQuantization["hq"] = QuantizationParameters(scale: 0, zeroPoint: 0)
        #expect(throws: FormatError.self) { try ModelFile.encode(model) }
        model = Self.model()
        model.graph.valueQuantization["hq"] = QuantizationParameters(scale: 0.1, zeroPoint: 300)
        #expect(throws: FormatError.self) { try ModelFile.encode(model) }
        model = Self.model()
        model.graph.valueQuantization["hq"] = nil  // an int8 output without parameters
        #expect(throws: FormatError.self) { try ModelFile.encode(model) }
    }
}
