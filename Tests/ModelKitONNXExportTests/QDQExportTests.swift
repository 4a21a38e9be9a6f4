import Foundation
import ModelKitCore
import ModelKitFormat
@testable import ModelKitONNX
import ModelKitPasses
import Testing

private let fixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path

/// The tiny CNN fixture quantized on deterministic inputs, with the float graph it came from.
private func quantizedTinyCNN(int8IO: Bool = false) throws -> PostTrainingQuantization {
    let model = try ModelFile.read(path: "\(fixtures)/models/tiny-cnn.mkm")
    var state: UInt64 = 7
    let batches = (0..<4).map { _ in
        Tensor(shape: [8, 8, 8, 1], floats: (0..<512).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) * 4 - 1
        })
    }
    return try PostTrainingQuantization(model: model, batches: batches, options: QuantizationOptions(int8IO: int8IO))
}

/// An exported ONNX graph with lookups by value name.
private struct ExportedGraph {
    let graph: ONNXGraphProto
    let initializers: [String: ONNXTensorProto]
    let producers: [String: ONNXNodeProto]

    init(_ model: Model) throws {
        let proto = try ONNXModelProto.decode(try ONNXExporter.export(model), limits: .default)
        graph = proto.graph
        initializers = Dictionary(uniqueKeysWithValues: graph.initializers.map { ($0.name, $0) })
        producers = Dictionary(uniqueKeysWithValues: graph.nodes.flatMap { node in node.outputs.map { ($0, node) } })
    }

    func nodes(_ opType: String) -> [ONNXNodeProto] { graph.nodes.filter { $0.opType == opType } }

    func consumers(_ name: String) -> [ONNXNodeProto] { graph.nodes.filter { $0.inputs.contains(name) } }

    /// The DequantizeLinear producing `name`, with its integer input, scales, zero points and axis.
    func dequantization(of name: String) throws -> (source: String, scales: [Float], zeroPoints: [Int32], axis: Int64?) {
        let node = try #require(producers[name], "'\(name)' has no producer")
        #expect(node.opType == "DequantizeLinear", "'\(name)' comes from \(node.opType)")
        let scale = try #require(initializers[node.inputs[1]])
        let zero = try #require(initializers[node.inputs[2]])
        let zeroPoints: [Int32] = zero.dataType == 3 ? int8s(zero).map { Int32($0) } : int32s(zero)
        return (node.inputs[0], floats(scale), zeroPoints, node.attributes.first { $0.name == "axis" }?.i)
    }
}

private func floats(_ t: ONNXTensorProto) -> [Float] {
    #expect(t.dataType == 1, "'\(t.name)' is type \(t.dataType), expected FLOAT")
    let raw = t.rawData ?? []
    return stride(from: 0, to: raw.count, by: 4).map { i in
        Float(bitPattern: UInt32(raw[i]) | UInt32(raw[i + 1]) << 8 | UInt32(raw[i + 2]) << 16 | UInt32(raw[i + 3]) << 24)
    }
}

private func int8s(_ t: ONNXTensorProto) -> [Int8] {
    #expect(t.dataType == 3, "'\(t.name)' is type \(t.dataType), expected INT8")
    return (t.rawData ?? []).map { Int8(bitPattern: $0) }
}

private func int32s(_ t: ONNXTensorProto) -> [Int32] {
    #expect(t.dataType == 6, "'\(t.name)' is type \(t.dataType), expected INT32")
    let raw = t.rawData ?? []
    return stride(from: 0, to: raw.count, by: 4).map { i in
        Int32(bitPattern: UInt32(raw[i]) | UInt32(raw[i + 1]) << 8 | UInt32(raw[i + 2]) << 16 | UInt32(raw[i + 3]) << 24)
    }
}

@Suite("ONNX export: int8 models in QDQ form")
struct QDQExportTests {
    @Test func int8ModelBecomesQDQAroundFloatOps() throws {
        let quantized = try quantizedTinyCNN()
        let exported = try ExportedGraph(quantized.model)
        let ops = Set(exported.graph.nodes.map(\.opType))
        #expect(ops == ["QuantizeLinear", "DequantizeLinear", "Conv", "Relu", "MaxPool", "Transpose", "Flatten", "Gemm", "Softmax"])
        // Float interface: NCHW image in, probabilities out.
        #expect(exported.graph.inputs.map(\.elementType) == [1])
        #expect(exported.graph.inputs[0].dims == [.parameter("N"), .value(1), .value(8), .value(8)])
        #expect(exported.graph.outputs.map(\.elementType) == [1])
        // Softmax reads the dequantized logits.
        let softmax = try #require(exported.nodes("Softmax").first)
        #expect(exported.producers[softmax.inputs[0]]?.opType == "DequantizeLinear")
        // Every QuantizeLinear writes INT8 with its value's scale and zero point.
        let graph = quantized.model.graph
        for q in exported.nodes("QuantizeLinear") {
            let value = q.outputs[0]
            let expected = try #require(graph.valueQuantization[value], "'\(value)' is not an int8 value of the model")
            #expect(floats(try #require(exported.initializers[q.inputs[1]])) == expected.scales)
            #expect(int8s(try #require(exported.initializers[q.inputs[2]])).map { Int32($0) } == expected.zeroPoints)
        }
    }

    /// Dequantized weights and biases must give back the float model's parameters (to half a
    /// step), and each bias scale must be input scale × weight scale: wrong scales, axes or a
    /// weight layout other than OIHW fail here.
    @Test func weightsAndBiasesDequantizeToTheFloatParameters() throws {
        let quantized = try quantizedTinyCNN()
        let exported = try ExportedGraph(quantized.model)
        let float = quantized.floatGraph
        let layers = exported.nodes("Conv") + exported.nodes("Gemm")
        #expect(layers.count == 2)
        for (layer, floatNode) in zip(layers, [float.nodes.first { $0.operation.name == "Conv2D" }!,
                                                float.nodes.first { $0.operation.name == "Dense" }!]) {
            let input = try exported.dequantization(of: layer.inputs[0])
            #expect(input.scales.count == 1 && input.axis == nil)

            let weight = try exported.dequantization(of: layer.inputs[1])
            #expect(weight.axis == 0)
            #expect(weight.zeroPoints.allSatisfy { $0 == 0 })
            let codes = int8s(try #require(exported.initializers[weight.source]))
            let floatWeight = try #require(float.initializers[floatNode.inputs[1]])
            let dims = floatWeight.shape.dims  // [O, kH, kW, C] or [O, K]
            let channels = dims[0], depth = codes.count / channels
            #expect(weight.scales.count == channels)
            for o in 0..<channels {
                for k in 0..<depth {
                    // ONNX holds conv weights OIHW; modelkit's float weight is OHWI.
                    let original: Float
                    if dims.count == 4 {
                        let (kh, kw, c) = (dims[1], dims[2], dims[3])
                        let (ci, y, x) = (k / (kh * kw), (k / kw) % kh, k % kw)
                        original = floatWeight.floats![((o * kh + y) * kw + x) * c + ci]
                    } else {
                        original = floatWeight.floats![o * depth + k]
                    }
                    let restored = weight.scales[o] * Float(codes[o * depth + k])
                    #expect(abs(restored - original) <= weight.scales[o] * 0.5001, "\(layer.opType) weight [\(o), \(k)]")
                }
            }

            let bias = try exported.dequantization(of: layer.inputs[2])
            #expect(bias.axis == 0)
            let biasCodes = int32s(try #require(exported.initializers[bias.source]))
            let floatBias = try #require(float.initializers[floatNode.inputs[2]]?.floats)
            for o in 0..<channels {
                let implied = input.scales[0] * weight.scales[o]
                #expect(abs(bias.scales[o] - implied) <= implied * 1e-6, "\(layer.opType) bias scale [\(o)]")
                #expect(abs(bias.scales[o] * Float(biasCodes[o]) - floatBias[o]) <= bias.scales[o] * 0.5001)
            }
        }
    }

    @Test func fusedReluSitsBetweenTheConvAndItsQuantizeLinear() throws {
        let exported = try ExportedGraph(try quantizedTinyCNN().model)
        let conv = try #require(exported.nodes("Conv").first)
        let relu = try #require(exported.consumers(conv.outputs[0]).first)
        #expect(relu.opType == "Relu")
        #expect(exported.consumers(relu.outputs[0]).map(\.opType) == ["QuantizeLinear"])
    }

    @Test func int8InputsStayInt8() throws {
        let quantized = try quantizedTinyCNN(int8IO: true)
        let exported = try ExportedGraph(quantized.model)
        let input = quantized.model.graph.inputs[0]
        #expect(input.dtype == .int8)
        #expect(exported.graph.inputs.map(\.elementType) == [3])
        #expect(exported.graph.inputs[0].dims == [.parameter("N"), .value(1), .value(8), .value(8)])
        // The first reader dequantizes it with the input's own parameters.
        let readers = exported.consumers(input.name)
        #expect(readers.map(\.opType) == ["DequantizeLinear"])
        let dq = try exported.dequantization(of: try #require(readers.first?.outputs.first))
        #expect(dq.scales == input.quantization?.scales && dq.zeroPoints == input.quantization?.zeroPoints)
    }
}
