import Testing
import ModelKitCore
@testable import ModelKitRuntime

/// The GEMM-backed Conv2D and Dense against the reference kernels, through whole sessions.
struct GemmKernelTests {
    struct ConvCase: Sendable, CustomTestStringConvertible {
        var input: [Int]
        var weight: [Int]
        var attributes: Conv2DAttributes
        var testDescription: String { "\(input) * \(weight) s\(attributes.strideH) d\(attributes.dilationH) \(attributes.padding) \(attributes.activation)" }

        /// The convolution's output shape, by shape inference.
        func outputShape() throws -> Shape {
            try Graph(inputs: [ValueInfo(name: "x", shape: Shape(input))], outputs: ["y"],
                      nodes: [Node(name: "c", operation: .conv2D(attributes), inputs: ["x", "w"], outputs: ["y"])],
                      initializers: ["w": Tensor(shape: Shape(weight), floats: [Float](repeating: 0, count: weight.reduce(1, *)))])
                .analyze().values["y"]!.shape
        }
    }

    static let convCases: [ConvCase] = [
        ConvCase(input: [2, 28, 28, 1], weight: [32, 3, 3, 1], attributes: Conv2DAttributes(activation: .relu)),
        ConvCase(input: [1, 13, 11, 5], weight: [7, 3, 3, 5], attributes: Conv2DAttributes(strides: (2, 2), padding: .same)),
        ConvCase(input: [3, 9, 9, 4], weight: [6, 3, 3, 4], attributes: Conv2DAttributes(dilations: (2, 2), activation: .relu6)),
        ConvCase(input: [1, 6, 7, 3], weight: [5, 2, 3, 3],
                 attributes: Conv2DAttributes(padding: .explicit(top: 1, left: 0, bottom: 2, right: 1), activation: .leakyRelu(alpha: 0.1))),
        ConvCase(input: [2, 5, 5, 16], weight: [9, 1, 1, 16], attributes: Conv2DAttributes()),
        ConvCase(input: [1, 8, 8, 3], weight: [4, 1, 1, 3], attributes: Conv2DAttributes(strides: (2, 2))),
        // Deep enough that the im2col rows go in blocks (400 pixels x 576 in four blocks, two images).
        ConvCase(input: [2, 20, 20, 64], weight: [24, 3, 3, 64], attributes: Conv2DAttributes(padding: .same, activation: .relu)),
    ]

    func compare(_ model: Model, input: Tensor) throws {
        let optimized = try Session(model: model, options: SessionOptions(kernels: .optimized)).run(input)
        let reference = try Session(model: model, options: SessionOptions(kernels: .reference)).run(input)
        #expect(optimized.shape == reference.shape)
        let a = optimized.floats!, b = reference.floats!
        let worst = zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        #expect(worst <= 1e-5, "max relative difference \(worst)")
    }

    @Test(arguments: convCases)
    func conv2DMatchesReference(_ testCase: ConvCase) throws {
        var random = SplitMix64(seed: UInt64(testCase.input.reduce(0, +) * 31 + testCase.weight[0]))
        let withBias = testCase.weight[0] % 2 == 1
        let graph = Graph(
            inputs: [ValueInfo(name: "x", shape: Shape(testCase.input))], outputs: ["y"],
            nodes: [Node(name: "conv", operation: .conv2D(testCase.attributes),
                         inputs: ["x", "w"] + (withBias ? ["b"] : []), outputs: ["y"])],
            initializers: ["w": Tensor(shape: Shape(testCase.weight), floats: random.floats(testCase.weight.reduce(1, *))),
                           "b": Tensor(shape: [testCase.weight[0]], floats: random.floats(testCase.weight[0]))]
                .filter { withBias || $0.key == "w" })
        try compare(Model(graph: graph), input: Tensor(shape: Shape(testCase.input), floats: random.floats(testCase.input.reduce(1, *))))
    }

    @Test(arguments: [(1, 784, 128), (5, 17, 3), (64, 64, 10)])
    func denseMatchesReference(batch: Int, inputs: Int, outputs: Int) throws {
        var random = SplitMix64(seed: UInt64(batch * 1000 + inputs))
        let graph = Graph(
            inputs: [ValueInfo(name: "x", shape: [batch, inputs])], outputs: ["y"],
            nodes: [Node(name: "dense", operation: .dense(activation: .relu), inputs: ["x", "w", "b"], outputs: ["y"])],
            initializers: ["w": Tensor(shape: [outputs, inputs], floats: random.floats(outputs * inputs)),
                           "b": Tensor(shape: [outputs], floats: random.floats(outputs))])
        try compare(Model(graph: graph), input: Tensor(shape: [batch, inputs], floats: random.floats(batch * inputs)))
    }

    @Test func wholeNetworkMatchesReference() throws {
        var random = SplitMix64(seed: 11)
        try compare(smallConvNet(), input: Tensor(shape: [4, 6, 6, 2], floats: random.floats(4 * 72)))
    }
}
