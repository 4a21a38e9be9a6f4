import Foundation
import ModelKitCore
import ModelKitFormat
import ModelKitONNX
import ModelKitRuntime
import Testing

private let fixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path

/// Deterministic inputs for every graph input (batch `batch` for a dynamic batch).
private func sampleFeeds(_ graph: Graph, batch: Int = 2, seed: UInt64 = 99) -> [String: Tensor] {
    var state = seed
    var feeds: [String: Tensor] = [:]
    for input in graph.inputs {
        let dims = input.shape.dims.map { $0 == -1 ? batch : $0 }
        let values = (0..<dims.reduce(1, *)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) * 4 - 2
        }
        feeds[input.name] = Tensor(shape: Shape(dims), floats: values)
    }
    return feeds
}

/// Exports `model`, imports the ONNX bytes again and checks every output agrees within
/// `tolerance` relative to the output's magnitude. Returns the re-imported model.
@discardableResult
private func expectRoundTrip(_ model: Model, tolerance: Float = 1e-5,
                             sourceLocation: SourceLocation = #_sourceLocation) throws -> Model {
    let bytes = try ONNXExporter.export(model)
    let imported = try ONNXImporter.importModel(bytes: bytes)
    #expect(imported.graph.inputs.map(\.name) == model.graph.inputs.map(\.name), sourceLocation: sourceLocation)
    #expect(imported.graph.inputs.map(\.shape) == model.graph.inputs.map(\.shape), sourceLocation: sourceLocation)
    #expect(imported.graph.outputs == model.graph.outputs, sourceLocation: sourceLocation)
    let feeds = sampleFeeds(model.graph)
    let expected = try Session(model: model).run(feeds)
    let actual = try Session(model: imported).run(feeds)
    for (name, e) in expected {
        let a = try #require(actual[name], sourceLocation: sourceLocation)
        #expect(a.shape == e.shape, "output \(name)", sourceLocation: sourceLocation)
        let magnitude = max(e.floats!.map { abs($0) }.max() ?? 0, 1e-6)
        let worst = zip(a.floats!, e.floats!).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= tolerance * magnitude, "output \(name): max difference \(worst)", sourceLocation: sourceLocation)
    }
    return imported
}

@Suite("ONNX export: export -> import round trips")
struct ONNXExportTests {
    @Test(arguments: ["fashion-mlp.mkm", "tiny-cnn.mkm"])
    func fixtureModelsRoundTrip(name: String) throws {
        let model = try ModelFile.read(path: "\(fixtures)/models/\(name)")
        let imported = try expectRoundTrip(model)
        #expect(imported.metadata.properties["onnx.metadata.\(ONNXExporter.labelsKey)"]
                == model.metadata.labels.joined(separator: "\n"))
        #expect(imported.metadata.properties["onnx.opset"] == "17")
        #expect(imported.metadata.properties["onnx.ir_version"] == "8")
    }

    @Test(arguments: ["lenet.onnx", "mixed_ops.onnx", "mobilenet_block.onnx", "resnet_small.onnx"])
    func importedONNXFixturesRoundTrip(name: String) throws {
        let model = try ONNXImporter.importModel(path: "\(fixtures)/onnx/\(name)")
        try expectRoundTrip(model)
    }

    /// Every op and layout case the exporter handles, in one NHWC graph with a dynamic batch.
    @Test func everyOperationRoundTrips() throws {
        var graph = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 6, 5, 3])], outputs: [], nodes: [])
        var seed: UInt64 = 5
        func constant(_ name: String, _ dims: [Int]) -> String {
            let values = (0..<dims.reduce(1, *)).map { _ -> Float in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return Float(seed >> 40) / Float(1 << 24) - 0.5
            }
            graph.initializers[name] = Tensor(shape: Shape(dims), floats: values)
            return name
        }
        func node(_ name: String, _ op: ModelKitCore.Operation, _ inputs: [String]) -> String {
            graph.nodes.append(Node(name: name, operation: op, inputs: inputs, outputs: [name]))
            return name
        }
        let pad = node("pad", .pad(pads: [0, 1, 0, 0, 0, 2, 1, 0], value: 0.25), ["x"])
        let conv = node("conv", .conv2D(Conv2DAttributes(strides: (2, 1), dilations: (1, 2), padding: .same,
                                                         activation: .relu6)), [pad, constant("w", [4, 3, 2, 3]), constant("b", [4])])
        let dw = node("dw", .conv2D(Conv2DAttributes(padding: .explicit(top: 1, left: 0, bottom: 0, right: 1), groups: 4,
                                                     activation: .leakyRelu(alpha: 0.1))), [conv, constant("dw.w", [4, 2, 2, 1])])
        let bn = node("bn", .batchNormalization(epsilon: 1e-3),
                      [dw, constant("s", [4]), constant("t", [4]), constant("m", [4]), "var"])
        graph.initializers["var"] = Tensor(shape: [4], floats: [0.5, 1, 1.5, 2])
        let scaled = node("scaled", .mul, [bn, constant("k", [4])])
        let sum = node("sum", .add(activation: .clip(min: -0.5, max: 2)), [scaled, conv])
        let maxPool = node("maxpool", .maxPool2D(Pool2DAttributes(kernel: (2, 2), strides: (1, 1), padding: .same)), [sum])
        let avgPool = node("avgpool", .averagePool2D(Pool2DAttributes(kernel: (3, 2), strides: (1, 1),
                                                                      padding: .explicit(top: 1, left: 1, bottom: 1, right: 0))), [sum])
        let cat = node("cat", .concat(axis: -1), [maxPool, avgPool])
        let hs = node("hs", .hardSwish, [cat])
        let soft = node("soft", .softmax(axis: 3), [hs])
        let gap = node("gap", .globalAveragePool, [soft])
        let tr = node("tr", .transpose(permutation: [0, 3, 2, 1]), [hs])
        let flat = node("flat", .flatten(axis: 1), [tr])
        let fc = node("fc", .dense(activation: .none), [flat, constant("fc.w", [5, 240]), constant("fc.b", [5])])
        let drop = node("drop", .dropout(rate: 0.3), [fc])
        let sig = node("sig", .sigmoid, [drop])
        let gapFlat = node("gapflat", .reshape(shape: [-1, 8]), [gap])
        let th = node("th", .tanh, [gapFlat])
        graph.outputs = [sig, th, sum]
        try expectRoundTrip(Model(graph: graph))
    }

    @Test func normalizationTextRoundTrips() throws {
        let n = InputNormalization(pixelScale: 1.0 / 255.0, mean: [0.2860, 0.1], std: [0.3530, 0.7])
        #expect(ONNXExporter.decodeNormalization(ONNXExporter.encodeNormalization(n)) == n)
        #expect(ONNXExporter.decodeNormalization("1;x;2") == nil)
    }

    @Test func uint8TensorsAreRejectedWithTheirName() throws {
        var model = try ModelFile.read(path: "\(fixtures)/models/fashion-mlp.mkm")
        let name = model.graph.initializers.keys.sorted()[0]  // the first one checked
        model.graph.initializers[name] = Tensor(shape: [1], storage: .uint8([1]))
        #expect(throws: ONNXExportError.unsupportedDType(name: name, dtype: .uint8)) { try ONNXExporter.export(model) }
    }
}
