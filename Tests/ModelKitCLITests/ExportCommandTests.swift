import Foundation
@testable import ModelKitCLI
import ModelKitCore
import ModelKitFormat
import ModelKitRuntime
import Testing

private let tinyCNN = fixture("models/tiny-cnn.mkm")

private func opCount(_ model: Model) -> [String: Int] {
    model.graph.nodes.reduce(into: [:]) { $0[$1.operation.name, default: 0] += 1 }
}

/// Both models on the same batch-2 input: the largest output difference.
private func maxDifference(_ a: Model, _ b: Model) throws -> Float {
    let input = a.graph.inputs[0]
    let dims = input.shape.dims.map { $0 == -1 ? 2 : $0 }
    let values = (0..<dims.reduce(1, *)).map { Float(($0 * 7919) % 255) / 255 }
    let x = Tensor(shape: Shape(dims), floats: values)
    let ya = try Session(model: a).run(x).floats!, yb = try Session(model: b).run(x).floats!
    return zip(ya, yb).map { abs($0 - $1) }.max() ?? .infinity
}

/// tiny-cnn with a BatchNormalization, a Dropout and a separate ReLU added after its
/// convolution, saved as a checkpoint with training state.
private func makeCheckpoint(in directory: String) throws -> (path: String, model: Model) {
    var model = try ModelFile.read(path: tinyCNN)
    var graph = model.graph
    let convIndex = try #require(graph.nodes.firstIndex { if case .conv2D = $0.operation { return true } else { return false } })
    guard case .conv2D(var attributes) = graph.nodes[convIndex].operation else { throw CLITestError.unexpected }
    let convOutput = graph.nodes[convIndex].outputs[0]
    let channels = graph.initializers[graph.nodes[convIndex].inputs[1]]!.shape[0]
    // The conv has no fused activation; BN -> Dropout -> ReLU follow it.
    attributes.activation = .none
    graph.nodes[convIndex].operation = .conv2D(attributes)
    graph.nodes[convIndex].outputs = ["conv_raw"]
    for (suffix, values) in [("scale", [Float](repeating: 1.5, count: channels)), ("bias", (0..<channels).map { Float($0) * 0.1 }),
                             ("mean", (0..<channels).map { Float($0) * -0.05 }), ("var", [Float](repeating: 0.8, count: channels))] {
        graph.initializers["bn.\(suffix)"] = Tensor(shape: [channels], floats: values)
    }
    let inserted = [
        Node(name: "bn", operation: .batchNormalization(epsilon: 1e-5),
             inputs: ["conv_raw", "bn.scale", "bn.bias", "bn.mean", "bn.var"], outputs: ["bn_out"]),
        Node(name: "drop", operation: .dropout(rate: 0.25), inputs: ["bn_out"], outputs: ["drop_out"]),
        Node(name: "relu_sep", operation: .relu, inputs: ["drop_out"], outputs: [convOutput]),
    ]
    graph.nodes.insert(contentsOf: inserted, at: convIndex + 1)
    model.graph = graph
    model.kind = .checkpoint
    model.training = TrainingState(epoch: 3, step: 30, optimizer: OptimizerState(name: "adam", slots: [
        "m/bn.scale": Tensor(shape: [channels], floats: [Float](repeating: 0.01, count: channels)),
    ]))
    let path = directory + "/tiny.mkc"
    try ModelFile.write(model, to: path)
    return (path, model)
}

enum CLITestError: Error { case unexpected }

@Suite("modelkit export, run as a user would")
struct ExportCommandTests {
    @Test func checkpointExportsToAnOptimizedModelWithTheSameOutputs() throws {
        let directory = try temporaryDirectory()
        let (path, checkpoint) = try makeCheckpoint(in: directory)
        let output = directory + "/tiny.mkm"
        let result = try modelkit("export", path, "-o", output)
        #expect(result.status == 0, "\(result.stderr)")
        for expected in ["fold-batchnorm 1", "remove-identities 1", "fuse-activation", "ops before:  9", "verified:"] {
            #expect(result.stdout.contains(expected), "missing '\(expected)' in:\n\(result.stdout)")
        }
        let exported = try ModelFile.read(path: output)
        #expect(exported.kind == .model)
        #expect(exported.training == nil)
        #expect(exported.metadata.labels == checkpoint.metadata.labels)
        #expect(exported.metadata.normalization == checkpoint.metadata.normalization)
        #expect(exported.metadata.producerName == checkpoint.metadata.producerName)
        #expect(exported.graph.nodes.count < checkpoint.graph.nodes.count)
        #expect(opCount(exported)["BatchNormalization"] == nil && opCount(exported)["Dropout"] == nil)
        #expect(try maxDifference(checkpoint, exported) <= 1e-5)
    }

    @Test func noOptimizeKeepsEveryOpButDropsTrainingState() throws {
        let directory = try temporaryDirectory()
        let (path, checkpoint) = try makeCheckpoint(in: directory)
        let output = directory + "/plain.mkm"
        let result = try modelkit("export", path, "-o", output, "--no-optimize", "--compression-level", "3")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("passes:      none"))
        let exported = try ModelFile.read(path: output)
        #expect(opCount(exported) == opCount(checkpoint))
        #expect(exported.training == nil && exported.kind == .model)
    }

    @Test func selectedPassesRunAlone() throws {
        let directory = try temporaryDirectory()
        let (path, checkpoint) = try makeCheckpoint(in: directory)
        let output = directory + "/some.mkm"
        let result = try modelkit("export", path, "-o", output, "--passes", "remove-identities,dead-code")
        #expect(result.status == 0, "\(result.stderr)")
        let exported = try ModelFile.read(path: output)
        var expected = opCount(checkpoint)
        expected["Dropout"] = nil
        #expect(opCount(exported) == expected)
    }

    @Test func onnxFixtureBecomesAModelThatRuns() throws {
        let directory = try temporaryDirectory()
        let output = directory + "/resnet.mkm"
        let result = try modelkit("export", fixture("onnx/resnet_small.onnx"), "-o", output)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("ONNX, opset"))
        let model = try ModelFile.read(path: output)
        #expect(model.kind == .model)
        // Run it through the CLI on a float batch shaped like its NHWC input.
        let input = model.graph.inputs[0].shape.dims.map { $0 == -1 ? 2 : $0 }
        let npy = directory + "/x.npy"
        try writeFloatNpy(npy, shape: input, values: (0..<input.reduce(1, *)).map { Float($0 % 17) / 17 })
        let run = try modelkit("run", output, "--input", npy, "--output", directory + "/y.npy")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(FileManager.default.fileExists(atPath: directory + "/y.npy"))
    }

    @Test func modelToONNXAndBackKeepsOutputsAndLabels() throws {
        let directory = try temporaryDirectory()
        let onnx = directory + "/tiny.onnx", back = directory + "/back.mkm"
        let first = try modelkit("export", tinyCNN, "-o", onnx)
        #expect(first.status == 0, "\(first.stderr)")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: onnx))
        #expect(bytes.count > 100 && bytes.first == 0x08, "an ONNX ModelProto starts with ir_version (field 1)")
        let second = try modelkit("export", onnx, "-o", back, "--format", "mkm")
        #expect(second.status == 0, "\(second.stderr)")
        let original = try ModelFile.read(path: tinyCNN), reimported = try ModelFile.read(path: back)
        #expect(reimported.metadata.labels == original.metadata.labels)
        #expect(reimported.metadata.normalization == original.metadata.normalization)
        #expect(try maxDifference(original, reimported) <= 1e-5)
    }

    @Test func usageErrorsExit64() throws {
        let directory = try temporaryDirectory()
        let output = directory + "/x.mkm"
        for arguments in [["export", tinyCNN, "-o", output, "--passes", "fold-batchnorm,no-such-pass"],
                          ["export", tinyCNN, "-o", output, "--passes", "dead-code", "--no-optimize"],
                          ["export", tinyCNN, "-o", directory + "/x.bin"],
                          ["export", tinyCNN, "-o", directory + "/x.onnx", "--compression-level", "5"]] {
            let result = try modelkit(arguments: arguments)
            #expect(result.status == 64, "\(arguments): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test func corruptOrMissingInputFailsWithoutWriting() throws {
        let directory = try temporaryDirectory()
        let output = directory + "/out.mkm"
        let corrupt = try modelkit("export", fixture("corrupt/truncated-mid-frame.mkm"), "-o", output)
        #expect(corrupt.status == 65)
        #expect(corrupt.stderr.hasPrefix("modelkit: error: ") && corrupt.stderr.split(separator: "\n").count == 1)
        let garbage = directory + "/garbage.onnx"
        try Data("not a protobuf at all".utf8).write(to: URL(fileURLWithPath: garbage))
        #expect(try modelkit("export", garbage, "-o", output).status == 65)
        #expect(try modelkit("export", directory + "/missing.mkm", "-o", output).status == 66)
        #expect(!FileManager.default.fileExists(atPath: output))
    }
}

@Suite("export verification")
struct ExportVerifierTests {
    @Test func aChangedWeightFailsVerificationAndTheSameModelPasses() throws {
        let model = try ModelFile.read(path: tinyCNN)
        #expect(try ExportVerifier(reference: model, candidate: model).run().passed)
        var changed = model
        let name = model.graph.initializers.keys.sorted().first { model.graph.initializers[$0]!.shape.rank == 2 }!
        var weights = changed.graph.initializers[name]!
        weights.storage = .float32(weights.floats!.map { $0 * 1.001 })
        changed.graph.initializers[name] = weights
        let result = try ExportVerifier(reference: model, candidate: changed).run()
        #expect(!result.passed)
        #expect(result.maxDifference > result.tolerance)
        #expect(try ExportVerifier(reference: model, candidate: changed, absoluteTolerance: 1).run().passed)
    }
}

/// A little-endian float32 C-order .npy file.
private func writeFloatNpy(_ path: String, shape: [Int], values: [Float]) throws {
    var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(shape.map(String.init).joined(separator: ", ")),), }"
    while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
    header += "\n"
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
    bytes += Array(header.utf8)
    for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}
