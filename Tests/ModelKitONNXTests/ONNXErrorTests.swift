import Testing
import ModelKitCore
@testable import ModelKitONNX

@Suite struct ONNXErrorTests {
    @Test func unsupportedOpsAreAllNamedInOneError() throws {
        let error = try #require(throws: ONNXError.self) {
            try ONNXImporter.importModel(path: ONNXFixtures.path("unsupported.onnx"))
        }
        #expect(error == .unsupportedOperators([
            UnsupportedONNXOperator(opType: "Resize", nodes: ["upsample_a", "upsample_b"]),
            UnsupportedONNXOperator(opType: "LSTM", nodes: ["encoder_lstm"]),
        ]))
        #expect(error.description
            == "unsupported ONNX ops: Resize (nodes 'upsample_a', 'upsample_b'), LSTM (node 'encoder_lstm')")
    }

    @Test func opsetOutsideTheSupportedRangeIsRejected() throws {
        let error = try #require(throws: ONNXError.self) {
            try ONNXImporter.importModel(path: ONNXFixtures.path("old_opset.onnx"))
        }
        #expect(error == .unsupportedOpset(version: 11, supported: 13...21))
        #expect(error.description == "ONNX opset 11 is not supported (supported: 13...21)")
    }

    @Test func externalDataIsAClearError() throws {
        let error = try #require(throws: ONNXError.self) {
            try ONNXImporter.importModel(path: ONNXFixtures.path("external.onnx"))
        }
        guard case .externalData(let name) = error else {
            Issue.record("expected externalData, got \(error)")
            return
        }
        #expect(!name.isEmpty && error.description.contains("EXTERNAL"))
    }

    @Test func emptyFileIsMalformed() {
        #expect(throws: ONNXError.malformed(reason: "the file is empty")) {
            try ONNXImporter.importModel(bytes: [])
        }
    }

    @Test func missingFileIsAFileError() throws {
        let error = try #require(throws: ONNXError.self) {
            try ONNXImporter.importModel(path: ONNXFixtures.path("no-such-model.onnx"))
        }
        guard case .file(.notFound) = error else {
            Issue.record("expected file not found, got \(error)")
            return
        }
    }

    /// Every truncation of a real model fails with an ONNXError (never a crash), except those
    /// that happen to end on a message boundary and still form a complete model.
    @Test func truncatedFilesGiveCleanErrors() throws {
        let bytes = try ONNXFixtures.bytes("mixed_ops.onnx")
        var failures = 0
        for length in stride(from: 1, to: bytes.count, by: 97) {
            do {
                _ = try ONNXImporter.importModel(bytes: Array(bytes[..<length]))
            } catch let error as ONNXError {
                failures += 1
                #expect(!error.description.contains("\n"))
            }
        }
        #expect(failures > 0)
        // Cutting inside the last tensor's raw bytes is always invalid wire data.
        #expect(throws: ONNXError.self) { try ONNXImporter.importModel(bytes: Array(bytes.dropLast(3))) }
    }

    @Test func garbageIsMalformed() throws {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for length in [1, 7, 64, 1000] {
            let garbage: [UInt8] = (0..<length).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: state >> 56)
            }
            #expect(throws: ONNXError.self) { try ONNXImporter.importModel(bytes: garbage) }
        }
        // Text is not a protobuf ModelProto with a graph.
        let text = Array("this is not an onnx model\n".utf8)
        #expect(throws: ONNXError.self) { try ONNXImporter.importModel(bytes: text) }
    }

    /// Flipped bytes anywhere in a model must give an error or a model, never a crash.
    @Test func bitFlipsNeverCrash() throws {
        let bytes = try ONNXFixtures.bytes("resnet_small.onnx")
        for position in stride(from: 0, to: bytes.count, by: 211) {
            var corrupted = bytes
            corrupted[position] ^= 0xA5
            _ = try? ONNXImporter.importModel(bytes: corrupted)
        }
    }

    @Test func fileLargerThanTheLimitIsRefused() throws {
        let bytes = try ONNXFixtures.bytes("mixed_ops.onnx")
        let limits = Limits(maxPayloadBytes: 1000)
        #expect(throws: ONNXError.limitExceeded(what: "file size", value: bytes.count, limit: 1000)) {
            try ONNXImporter.importModel(bytes: bytes, limits: limits)
        }
        // A tensor-size limit below the LeNet Gemm weight (120 x 400) names that tensor.
        let error = try #require(throws: ONNXError.self) {
            try ONNXImporter.importModel(path: ONNXFixtures.path("lenet.onnx"), limits: Limits(maxTensorElements: 10_000))
        }
        guard case .limitExceeded(let what, let value, 10_000) = error else {
            Issue.record("expected limitExceeded, got \(error)")
            return
        }
        #expect(what.contains("tensor") && value == 48_000)
    }
}
