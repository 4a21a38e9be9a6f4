import Testing
import ModelKitCore
import ModelKitRuntime
@testable import ModelKitONNX

/// Imported models against onnxruntime on the same input (transposed NCHW -> NHWC for modelkit).
@Suite struct ONNXParityTests {
    static let fixtures = ["lenet.json", "mobilenet_block.json", "resnet_small.json", "mixed_ops.json"]

    @Test(arguments: fixtures)
    func importedModelMatchesOnnxruntime(_ fixture: String) throws {
        let reference = try ONNXFixtures.reference(fixture)
        let model = try ONNXImporter.importModel(path: ONNXFixtures.path(reference.model))

        // The 4-D input is declared NHWC with a dynamic batch, and the NCHW origin is recorded.
        let input = try #require(model.graph.inputs.first)
        #expect(input.name == reference.input_name)
        let (n, c, h, w) = (reference.input_shape[0], reference.input_shape[1], reference.input_shape[2],
                            reference.input_shape[3])
        #expect(input.shape == Shape([-1, h, w, c]))
        #expect(model.metadata.properties[ONNXImporter.inputLayoutProperty(input.name)] == "NCHW")
        #expect(model.graph.outputs.sorted() == reference.outputs.keys.sorted())

        let nhwc = permute(reference.input, shape: reference.input_shape, [0, 2, 3, 1])
        let session = try Session(model: model)
        let results = try session.run([input.name: Tensor(shape: Shape([n, h, w, c]), floats: nhwc.data)])
        for (name, expected) in reference.outputs {
            let actual = try #require(results[name], "missing output \(name)")
            // Graph outputs come back in ONNX order (a 4-D output is transposed back to NCHW).
            #expect(actual.shape.dims == expected.shape, "\(fixture) \(name)")
            let difference = maxAbsDifference(actual.floats ?? [], expected.data)
            #expect(difference <= 1e-4, "\(fixture) \(name): max abs difference \(difference)")
        }
    }

    /// tf2onnx keeps a Keras model's channels-last input: it is imported as NHWC as it is, with
    /// no layout change at the input, and matches onnxruntime.
    @Test func kerasChannelsLastInputIsTakenAsNHWC() throws {
        let reference = try ONNXFixtures.reference("keras_cnn.json")
        let model = try ONNXImporter.importModel(path: ONNXFixtures.path(reference.model))
        let input = try #require(model.graph.inputs.first)
        #expect(input.shape == Shape([-1, 28, 28, 1]))
        #expect(model.metadata.properties[ONNXImporter.inputLayoutProperty(input.name)] == "NHWC")
        let results = try Session(model: model).run([input.name: Tensor(shape: Shape(reference.input_shape), floats: reference.input)])
        for (name, expected) in reference.outputs {
            let actual = try #require(results[name])
            #expect(actual.shape.dims == expected.shape)
            #expect(maxAbsDifference(actual.floats ?? [], expected.data) <= 1e-5)
        }
    }

    /// The same model must also run at another batch size (the batch was "N" in the file).
    @Test func dynamicBatchRunsWithBatchOne() throws {
        let reference = try ONNXFixtures.reference("resnet_small.json")
        let model = try ONNXImporter.importModel(path: ONNXFixtures.path(reference.model))
        let per = reference.input.count / reference.input_shape[0]
        var shape = reference.input_shape
        shape[0] = 1
        let nhwc = permute(Array(reference.input[per...]), shape: shape, [0, 2, 3, 1])
        let session = try Session(model: model)
        let result = try session.run(Tensor(shape: Shape(nhwc.shape), floats: nhwc.data))
        let expected = try #require(reference.outputs["logits"])
        let secondRow = Array(expected.data[(expected.data.count / 2)...])
        #expect(result.shape == Shape([1, 10]))
        #expect(maxAbsDifference(result.floats ?? [], secondRow) <= 1e-4)
    }

    /// LeNet flattens a [N,16,5,5] map into a Gemm. The import keeps the map NHWC and instead
    /// permutes the Gemm's weight columns from ONNX's NCHW feature order to NHWC order.
    @Test func flattenIntoGemmPermutesWeightColumnsToNHWC() throws {
        let bytes = try ONNXFixtures.bytes("lenet.onnx")
        let model = try ONNXImporter.importModel(bytes: bytes)
        #expect(!model.graph.nodes.contains { if case .transpose = $0.operation { true } else { false } })

        let proto = try ONNXModelProto.decode(bytes, limits: .default)
        let gemm = try #require(proto.graph.nodes.first { $0.opType == "Gemm" })
        let tensor = try #require(proto.graph.initializers.first { $0.name == gemm.inputs[1] })
        let original = try #require(try Constant(tensor, limits: .default).floats())  // [120,400], transB=1
        let flatten = try #require(model.graph.nodes.first { if case .flatten = $0.operation { true } else { false } })
        let dense = try #require(model.graph.nodes.first { $0.inputs.first == flatten.outputs[0] })
        let imported = try #require(model.graph.initializers[dense.inputs[1]]?.floats)
        #expect(imported.count == original.count)
        let (c, h, w) = (16, 5, 5)
        for o in [0, 57, 119] {
            for channel in [0, 7, 15] {
                for y in [0, 4] {
                    for x in [0, 3] {
                        #expect(imported[o * 400 + (y * w + x) * c + channel] == original[o * 400 + (channel * h + y) * w + x])
                    }
                }
            }
        }
    }

    /// The Shape -> Gather -> Unsqueeze -> Concat chain folds into one Reshape with no shape ops left.
    @Test func shapeChainFoldsIntoOneReshape() throws {
        let model = try ONNXImporter.importModel(path: ONNXFixtures.path("resnet_small.onnx"))
        let reshapes = model.graph.nodes.filter { if case .reshape = $0.operation { true } else { false } }
        #expect(reshapes.map(\.operation) == [.reshape(shape: [0, -1])])
        // MatMul + Add became a single Dense with a bias.
        let dense = model.graph.nodes.filter { if case .dense = $0.operation { true } else { false } }
        #expect(dense.count == 1 && dense.first?.inputs.count == 3)
        #expect(dense.first?.outputs == ["logits"])
        // Every initializer is float32: int64 shape constants were consumed at import.
        #expect(model.graph.initializers.values.allSatisfy { $0.dtype == .float32 })
    }

    /// Conv weights are stored OHWI: element [o][h][w][i] of the import is ONNX's [o][i][h][w].
    @Test func convolutionWeightsAreOHWI() throws {
        let model = try ONNXImporter.importModel(path: ONNXFixtures.path("mobilenet_block.onnx"))
        let conv = try #require(model.graph.nodes.first { if case .conv2D = $0.operation { true } else { false } })
        let weight = try #require(model.graph.initializers[conv.inputs[1]])
        #expect(weight.shape == Shape([16, 3, 3, 3]))
        let depthwise = try #require(model.graph.nodes.first {
            if case .conv2D(let a) = $0.operation { a.groups == 48 } else { false }
        })
        #expect(model.graph.initializers[depthwise.inputs[1]]?.shape == Shape([48, 3, 3, 1]))
    }
}
