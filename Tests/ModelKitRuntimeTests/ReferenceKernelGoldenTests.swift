import Foundation
import ModelKitCore
import ModelKitRuntime
import Testing

// Checks every reference kernel against the goldens that Tools/make-op-goldens.py computes with
// onnxruntime (plus numpy for fused activations) and commits under Fixtures/goldens/ops/.

/// A JSON value, decoded loosely so each op can read its own attributes.
enum JSONValue: Decodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }
}

struct GoldenTensor: Decodable, Sendable {
    var shape: [Int]
    var data: [Float]

    var host: HostTensor { HostTensor(Shape(shape), data) }
}

struct GoldenCase: Decodable, Sendable, CustomTestStringConvertible {
    var name: String
    var op: String
    var attributes: [String: JSONValue]
    var inputs: [GoldenTensor?]
    var expected: GoldenTensor

    var testDescription: String { "\(op): \(name)" }
}

struct GoldenFile: Decodable, Sendable {
    var op: String
    var cases: [GoldenCase]
}

enum Goldens {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/goldens/ops")

    static func files() throws -> [GoldenFile] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".json") }
            .sorted()
        return try names.map { name in
            try JSONDecoder().decode(GoldenFile.self, from: Data(contentsOf: directory.appendingPathComponent(name)))
        }
    }

    static func cases() throws -> [GoldenCase] {
        try files().flatMap(\.cases)
    }
}

struct GoldenFormatError: Error, CustomStringConvertible {
    var description: String
}

/// Builds the `Operation` a golden case describes (see the encodings in Tools/make-op-goldens.py).
func operation(for golden: GoldenCase) throws -> ModelKitCore.Operation {
    let attributes = golden.attributes
    func fail(_ reason: String) -> GoldenFormatError {
        GoldenFormatError(description: "\(golden.testDescription): \(reason)")
    }
    func number(_ key: String) throws -> Double {
        guard case .number(let value)? = attributes[key] else { throw fail("attribute \(key) is not a number") }
        return value
    }
    func int(_ key: String) throws -> Int {
        let value = try number(key)
        guard let result = Int(exactly: value) else { throw fail("attribute \(key) is not an integer") }
        return result
    }
    func float(_ key: String) throws -> Float { Float(try number(key)) }
    func ints(_ key: String) throws -> [Int] {
        guard case .array(let values)? = attributes[key] else { throw fail("attribute \(key) is not an array") }
        return try values.map { value in
            guard case .number(let n) = value, let i = Int(exactly: n) else { throw fail("\(key) holds a non-integer") }
            return i
        }
    }
    func pair(_ key: String) throws -> (Int, Int) {
        let values = try ints(key)
        guard values.count == 2 else { throw fail("attribute \(key) must hold 2 values") }
        return (values[0], values[1])
    }
    func padding() throws -> Padding {
        switch attributes["padding"] {
        case .string("valid")?: return .valid
        case .string("same")?: return .same
        case .array?:
            let p = try ints("padding")
            guard p.count == 4 else { throw fail("explicit padding must hold 4 values") }
            return .explicit(top: p[0], left: p[1], bottom: p[2], right: p[3])
        default: throw fail("bad padding")
        }
    }
    func activation() throws -> FusedActivation {
        guard case .object(let object)? = attributes["activation"], case .string(let type)? = object["type"] else {
            throw fail("bad activation")
        }
        func value(_ key: String) throws -> Float {
            guard case .number(let v)? = object[key] else { throw fail("activation \(type) lacks \(key)") }
            return Float(v)
        }
        switch type {
        case "none": return .none
        case "relu": return .relu
        case "clip": return .clip(min: try value("min"), max: try value("max"))
        case "leakyRelu": return .leakyRelu(alpha: try value("alpha"))
        default: throw fail("unknown activation \(type)")
        }
    }

    switch golden.op {
    case "Conv2D":
        return .conv2D(Conv2DAttributes(strides: try pair("strides"), dilations: try pair("dilations"),
                                        padding: try padding(), groups: try int("groups"),
                                        activation: try activation()))
    case "Dense": return .dense(activation: try activation())
    case "MaxPool2D", "AveragePool2D":
        var pool = Pool2DAttributes(kernel: try pair("kernel"), strides: try pair("strides"), padding: try padding())
        if golden.op == "AveragePool2D" {
            guard case .bool(let include)? = attributes["countIncludePad"] else { throw fail("countIncludePad missing") }
            pool.countIncludePad = include
            return .averagePool2D(pool)
        }
        return .maxPool2D(pool)
    case "GlobalAveragePool": return .globalAveragePool
    case "ReLU": return .relu
    case "Clip": return .clip(min: try float("min"), max: try float("max"))
    case "LeakyReLU": return .leakyRelu(alpha: try float("alpha"))
    case "Sigmoid": return .sigmoid
    case "Tanh": return .tanh
    case "HardSwish": return .hardSwish
    case "Softmax": return .softmax(axis: try int("axis"))
    case "Flatten": return .flatten(axis: try int("axis"))
    case "Reshape": return .reshape(shape: try ints("shape"))
    case "Transpose": return .transpose(permutation: try ints("permutation"))
    case "Add": return .add(activation: try activation())
    case "Mul": return .mul
    case "Concat": return .concat(axis: try int("axis"))
    case "Pad": return .pad(pads: try ints("pads"), value: try float("value"))
    case "BatchNormalization": return .batchNormalization(epsilon: try float("epsilon"))
    case "Dropout": return .dropout(rate: try float("rate"))
    default: throw fail("unknown op \(golden.op)")
    }
}

@Suite("Reference kernels vs onnxruntime goldens")
struct ReferenceKernelGoldenTests {
    /// Every op has a golden file, so the parameterized test below cannot pass by running nothing.
    @Test func everyOpHasGoldens() throws {
        let files = try Goldens.files()
        let expected: Set = ["Conv2D", "Dense", "MaxPool2D", "AveragePool2D", "GlobalAveragePool", "ReLU", "Clip",
                             "LeakyReLU", "Sigmoid", "Tanh", "HardSwish", "Softmax", "Flatten", "Reshape", "Transpose",
                             "Add", "Mul", "Concat", "Pad", "BatchNormalization", "Dropout"]
        #expect(Set(files.map(\.op)) == expected)
        for file in files {
            #expect(!file.cases.isEmpty, "\(file.op) has no cases")
            for golden in file.cases {
                #expect(golden.op == file.op)
                #expect(try operation(for: golden).name == file.op)
            }
        }
        #expect(files.reduce(0) { $0 + $1.cases.count } >= 90)
    }

    @Test(arguments: try Goldens.cases())
    func matchesGolden(_ golden: GoldenCase) throws {
        let operation = try operation(for: golden)
        let node = Node(name: "golden", operation: operation,
                        inputs: golden.inputs.indices.map { golden.inputs[$0] == nil ? "" : "in\($0)" },
                        outputs: ["out"])
        let infos: [ValueInfo?] = golden.inputs.enumerated().map { position, tensor in
            tensor.map { ValueInfo(name: "in\(position)", shape: Shape($0.shape)) }
        }
        let inferred = try ShapeInference.infer(node: node, inputs: infos)
        try #require(inferred.shape.dims == golden.expected.shape,
                     "ShapeInference gives \(inferred.shape), onnxruntime \(golden.expected.shape)")

        let actual = runReference(operation, golden.inputs.map { $0?.host }, outputShape: inferred.shape)
        let bad = mismatches(actual, golden.expected.data)
        #expect(bad.isEmpty, """
            \(bad.count) of \(actual.count) elements differ; first: \
            \(bad.prefix(5).map { "[\($0)] got \(actual[$0]) want \(golden.expected.data[$0])" }.joined(separator: ", "))
            """)
    }
}
