import Testing
import ModelKitCore

/// Infers the output of one node over inputs of the given shapes.
private func infer(_ operation: Operation, _ shapes: [Shape]) throws -> Shape {
    let names = shapes.indices.map { "in\($0)" }
    let node = Node(name: "n", operation: operation, inputs: names, outputs: ["out"])
    return try ShapeInference.infer(node: node, inputs: zip(names, shapes).map { ValueInfo(name: $0, shape: $1) }).shape
}

struct ShapeInferenceTests {
    struct ConvCase: CustomTestStringConvertible, Sendable {
        var attributes: Conv2DAttributes
        var input: Shape
        var weight: Shape
        var expected: Shape
        var testDescription: String { "\(input) * \(weight) \(attributes.padding) s\(attributes.strideH) -> \(expected)" }
    }

    @Test(arguments: [
        ConvCase(attributes: Conv2DAttributes(), input: [1, 28, 28, 1], weight: [32, 3, 3, 1], expected: [1, 26, 26, 32]),
        ConvCase(attributes: Conv2DAttributes(padding: .same), input: [2, 28, 28, 1], weight: [8, 3, 3, 1], expected: [2, 28, 28, 8]),
        ConvCase(attributes: Conv2DAttributes(strides: (2, 2), padding: .same), input: [1, 7, 7, 4], weight: [4, 3, 3, 4], expected: [1, 4, 4, 4]),
        ConvCase(attributes: Conv2DAttributes(dilations: (2, 2)), input: [1, 9, 9, 2], weight: [3, 3, 3, 2], expected: [1, 5, 5, 3]),
        ConvCase(attributes: Conv2DAttributes(padding: .explicit(top: 1, left: 0, bottom: 2, right: 0)), input: [1, 5, 5, 1],
                 weight: [1, 3, 3, 1], expected: [1, 6, 3, 1]),
        ConvCase(attributes: Conv2DAttributes(groups: 8), input: [1, 5, 5, 8], weight: [16, 3, 3, 1], expected: [1, 3, 3, 16]),
    ])
    func conv2DOutputShapes(_ testCase: ConvCase) throws {
        #expect(try infer(.conv2D(testCase.attributes), [testCase.input, testCase.weight]) == testCase.expected)
    }

    @Test func conv2DRejectsChannelMismatchAndBadBias() {
        #expect(throws: GraphError.self) { try infer(.conv2D(Conv2DAttributes()), [[1, 8, 8, 3], [4, 3, 3, 2]]) }
        #expect(throws: GraphError.self) { try infer(.conv2D(Conv2DAttributes()), [[1, 8, 8, 3], [4, 3, 3, 3], [5]]) }
        #expect(throws: GraphError.self) { try infer(.conv2D(Conv2DAttributes()), [[1, 2, 2, 3], [4, 3, 3, 3]]) }
        #expect(throws: GraphError.self) { try infer(.conv2D(Conv2DAttributes(groups: 2)), [[1, 8, 8, 3], [4, 3, 3, 1]]) }
        #expect(throws: GraphError.self) { try infer(.conv2D(Conv2DAttributes(strides: (0, 1))), [[1, 8, 8, 3], [4, 3, 3, 3]]) }
    }

    @Test func denseAndPooling() throws {
        #expect(try infer(.dense(activation: .relu), [[4, 576], [64, 576], [64]]) == [4, 64])
        #expect(throws: GraphError.self) { try infer(.dense(activation: .none), [[4, 576], [64, 575]]) }
        #expect(try infer(.maxPool2D(Pool2DAttributes(kernel: (2, 2))), [[1, 26, 26, 32]]) == [1, 13, 13, 32])
        #expect(try infer(.averagePool2D(Pool2DAttributes(kernel: (3, 3), strides: (2, 2), padding: .same)), [[1, 7, 7, 2]]) == [1, 4, 4, 2])
        #expect(try infer(.globalAveragePool, [[3, 7, 7, 5]]) == [3, 1, 1, 5])
        #expect(throws: GraphError.self) {
            try infer(.maxPool2D(Pool2DAttributes(kernel: (2, 2), padding: .explicit(top: 2, left: 0, bottom: 0, right: 0))), [[1, 4, 4, 1]])
        }
    }

    @Test func shapeOps() throws {
        #expect(try infer(.flatten(axis: 1), [[2, 3, 3, 64]]) == [2, 576])
        #expect(try infer(.flatten(axis: 0), [[2, 3]]) == [1, 6])
        #expect(try infer(.reshape(shape: [0, -1]), [[2, 3, 4]]) == [2, 12])
        #expect(throws: GraphError.self) { try infer(.reshape(shape: [5, -1]), [[2, 3, 4]]) }
        #expect(throws: GraphError.self) { try infer(.reshape(shape: [-1, -1]), [[2, 3, 4]]) }
        #expect(try infer(.transpose(permutation: [0, 3, 1, 2]), [[1, 5, 6, 7]]) == [1, 7, 5, 6])
        #expect(throws: GraphError.self) { try infer(.transpose(permutation: [0, 0, 1, 2]), [[1, 5, 6, 7]]) }
        #expect(try infer(.concat(axis: -1), [[1, 2, 3], [1, 2, 5]]) == [1, 2, 8])
        #expect(throws: GraphError.self) { try infer(.concat(axis: 0), [[1, 2, 3], [1, 2, 5]]) }
        #expect(try infer(.pad(pads: [0, 1, 2, 0, 3, 4], value: 0), [[1, 2, 3]]) == [1, 6, 9])
        #expect(throws: GraphError.self) { try infer(.pad(pads: [0, 1], value: 0), [[1, 2, 3]]) }
    }

    @Test func broadcasting() throws {
        #expect(try infer(.add(activation: .none), [[2, 1, 4], [3, 1]]) == [2, 3, 4])
        #expect(try infer(.mul, [[5], [2, 5]]) == [2, 5])
        #expect(throws: GraphError.self) { try infer(.add(activation: .none), [[2, 3], [4]]) }
    }

    @Test func axesAreRangeChecked() throws {
        #expect(try infer(.softmax(axis: -1), [[2, 10]]) == [2, 10])
        #expect(throws: GraphError.self) { try infer(.softmax(axis: 2), [[2, 10]]) }
        #expect(throws: GraphError.self) { try infer(.flatten(axis: 4), [[2, 10, 3]]) }
    }

    @Test func batchNormalizationNeedsPerChannelParameters() throws {
        #expect(try infer(.batchNormalization(epsilon: 1e-3), [[1, 4, 4, 8], [8], [8], [8], [8]]) == [1, 4, 4, 8])
        #expect(throws: GraphError.self) { try infer(.batchNormalization(epsilon: 1e-3), [[1, 4, 4, 8], [8], [8], [4], [8]]) }
    }

    @Test func samePaddingPutsTheOddCellAtTheEnd() {
        let pads = Padding.same.resolve(height: 6, width: 5, kernel: (3, 2), stride: (2, 1))
        // height: out 3, total (3-1)*2+3-6 = 1 -> (0, 1); width: out 5, total 1 -> (0, 1)
        #expect(pads.top == 0 && pads.bottom == 1 && pads.left == 0 && pads.right == 1)
    }
}
