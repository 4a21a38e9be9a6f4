import CModelKitAPI
import Foundation
import ModelKitCore
import ModelKitFormat
import ModelKitRuntime
import Testing

/// The C API called through its header (the CModelKitAPI module), so these calls go through the
/// exact C signatures and struct layouts a C program uses.
@Suite struct CAPITests {
    let mlp = fixture("models/fashion-mlp.mkm")

    @Test func missingFileIsNotFoundWithThePath() {
        var model: OpaquePointer?
        #expect(mk_model_load("/no/such/model.mkm", &model) == MK_ERROR_NOT_FOUND)
        #expect(model == nil)
        #expect(lastError.contains("/no/such/model.mkm"))
        #expect(!lastError.contains("\n"))
        #expect(String(cString: mk_status_name(MK_ERROR_NOT_FOUND)) == "MK_ERROR_NOT_FOUND")
    }

    @Test func directoryIsAnIOError() {
        var model: OpaquePointer?
        #expect(mk_model_load(fixture("models"), &model) == MK_ERROR_IO)
        #expect(lastError.contains("directory"))
    }

    /// Every file of the corrupt corpus fails with INVALID_MODEL at load or at session
    /// creation, with a one-line message, and never crashes.
    @Test(arguments: try! FileManager.default.contentsOfDirectory(atPath: fixture("corrupt")).sorted())
    func corruptFilesAreInvalidModels(name: String) throws {
        var model: OpaquePointer?
        let status = mk_model_load(fixture("corrupt/" + name), &model)
        if status == MK_OK {
            defer { mk_model_free(model) }
            var session: OpaquePointer?
            #expect(mk_session_create(model, nil, &session) == MK_ERROR_INVALID_MODEL, "\(name) was accepted")
            #expect(session == nil)
        } else {
            #expect(status == MK_ERROR_INVALID_MODEL, "\(name): \(lastError)")
            #expect(lastError.hasPrefix(fixture("corrupt/" + name) + ": "))
        }
        #expect(!lastError.isEmpty && !lastError.contains("\n"))
    }

    @Test func nullPointersAreInvalidArguments() {
        var model: OpaquePointer?
        #expect(mk_model_load(nil, &model) == MK_ERROR_INVALID_ARGUMENT)
        #expect(lastError == "path is NULL")
        #expect(mk_model_load(mlp, nil) == MK_ERROR_INVALID_ARGUMENT)
        #expect(mk_model_load_from_memory(nil, 10, &model) == MK_ERROR_INVALID_ARGUMENT)
        var session: OpaquePointer?
        #expect(mk_session_create(nil, nil, &session) == MK_ERROR_INVALID_ARGUMENT)
        #expect(lastError == "model is NULL")
        var count = 0
        #expect(mk_session_input_count(nil, &count) == MK_ERROR_INVALID_ARGUMENT)
        #expect(mk_model_label_count(nil, &count) == MK_ERROR_INVALID_ARGUMENT)
        var output = mk_output()
        #expect(mk_session_run(nil, nil, 0, &output, 1) == MK_ERROR_INVALID_ARGUMENT)
        #expect(mk_session_options_set_threads(nil, 2) == MK_ERROR_INVALID_ARGUMENT)
        // Freeing NULL is a no-op.
        mk_model_free(nil)
        mk_session_free(nil)
        mk_session_options_free(nil)
    }

    @Test func describesInputsAndOutputs() throws {
        let model = try loadModel(mlp)
        defer { mk_model_free(model) }
        let session = try createSession(model)
        defer { mk_session_free(session) }
        let swiftModel = try ModelFile.read(path: mlp)
        let swiftSession = try Session(model: swiftModel)

        var count = 0
        #expect(mk_session_input_count(session, &count) == MK_OK && count == 1)
        #expect(mk_session_output_count(session, &count) == MK_OK && count == 1)
        var name: UnsafePointer<CChar>?
        #expect(mk_session_input_name(session, 0, &name) == MK_OK)
        #expect(String(cString: name!) == swiftModel.graph.inputs[0].name)
        #expect(mk_session_output_name(session, 0, &name) == MK_OK)
        #expect(String(cString: name!) == swiftModel.graph.outputs[0])
        #expect(mk_session_input_name(session, 1, &name) == MK_ERROR_INVALID_ARGUMENT)
        #expect(lastError == "input index 1 is out of range; the model has 1 inputs")
        var dtype = MK_DTYPE_INT8
        #expect(mk_session_output_dtype(session, 0, &dtype) == MK_OK && dtype == MK_DTYPE_FLOAT32)

        var shape = [Int64](repeating: 0, count: 8)
        var rank = 0
        #expect(mk_session_input_shape(session, 0, &shape, 8, &rank) == MK_OK)
        #expect(Array(shape.prefix(rank)) == swiftModel.graph.inputs[0].shape.dims.map(Int64.init))
        #expect(shape[0] == -1)
        #expect(mk_session_output_shape(session, 0, &shape, 8, &rank) == MK_OK)
        let classes = Int64(swiftSession.outputs[0].shape[1])
        #expect(Array(shape.prefix(rank)) == [-1, classes])
        #expect(mk_session_output_shape(session, 0, &shape, 1, &rank) == MK_ERROR_BUFFER_TOO_SMALL)
        #expect(rank == 2)

        #expect(mk_model_label_count(model, &count) == MK_OK && count == swiftModel.metadata.labels.count)
        var label: UnsafePointer<CChar>?
        #expect(mk_model_label(model, 0, &label) == MK_OK && String(cString: label!) == swiftModel.metadata.labels[0])
        #expect(mk_model_label(model, -1, &label) == MK_ERROR_INVALID_ARGUMENT)
    }

    /// A batch through the C API equals the same batch through `Session.run`, and the session
    /// re-plans when the batch size changes.
    @Test(arguments: [1, 3, 1])
    func runMatchesSwiftSession(batch: Int) throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: mlp)))
        var model: OpaquePointer?
        #expect(bytes.withUnsafeBytes { mk_model_load_from_memory($0.baseAddress, $0.count, &model) } == MK_OK)
        defer { mk_model_free(model) }
        let session = try createSession(model!, threads: 2)
        defer { mk_session_free(session) }
        let swiftModel = try ModelFile.read(path: mlp)
        let sample = Array(swiftModel.graph.inputs[0].shape.dims.dropFirst())
        let features = sample.reduce(1, *)
        var generator = SystemRandomNumberGenerator()
        let values = (0..<(batch * features)).map { _ in Float.random(in: 0...1, using: &generator) }
        let expected = try Session(model: swiftModel).run(Tensor(shape: Shape([batch] + sample), floats: values))

        var scores = [Float](repeating: .nan, count: 100)
        try values.withUnsafeBufferPointer { source in
            var input = makeInput(source, shape: ([batch] + sample).map(Int64.init))
            try scores.withUnsafeMutableBufferPointer { destination in
                var output = mk_output()
                output.data = destination.baseAddress
                output.capacity = destination.count
                // Twice: the second run reuses the plan and must give the same numbers.
                for _ in 0..<2 {
                    let status = mk_session_run(session, &input, 1, &output, 1)
                    guard status == MK_OK else { throw CAPIError(status: status, description: lastError) }
                    #expect(dims(of: output) == expected.shape.dims.map(Int64.init))
                }
            }
        }
        let got = Array(scores.prefix(expected.elementCount))
        for (a, b) in zip(got, expected.floats!) { #expect(abs(a - b) <= 1e-5) }
    }

    @Test func wrongShapesAndBuffersAreReported() throws {
        let model = try loadModel(mlp)
        defer { mk_model_free(model) }
        let session = try createSession(model)
        defer { mk_session_free(session) }
        let values = [Float](repeating: 0.5, count: 2 * 784)
        var scores = [Float](repeating: 0, count: 20)
        func run(_ shape: [Int64], count: Int? = nil, capacity: Int = 10, inputs: Int = 1) -> (mk_status, mk_output) {
            values.withUnsafeBufferPointer { source in
                var input = makeInput(UnsafeBufferPointer(rebasing: source[0..<(count ?? source.count)]), shape: shape)
                if shape.count > 8 { input.rank = shape.count }
                return scores.withUnsafeMutableBufferPointer { destination in
                    var output = mk_output()
                    output.data = destination.baseAddress
                    output.capacity = capacity
                    return (mk_session_run(session, &input, inputs, &output, 1), output)
                }
            }
        }
        #expect(run([2, 784]).0 == MK_ERROR_SHAPE_MISMATCH)
        #expect(lastError == "input 'image' has shape [2x784], the model expects [?x28x28x1]")
        #expect(run([2, 28, 28]).0 == MK_ERROR_SHAPE_MISMATCH)
        #expect(run([2, 28, 28, 1], count: 784).0 == MK_ERROR_SHAPE_MISMATCH)
        #expect(lastError.contains("784 values"))
        #expect(run([-2, 28, 28, 1], count: 0).0 == MK_ERROR_SHAPE_MISMATCH)
        #expect(run([1, 1, 1, 1, 1, 1, 1, 1, 1]).0 == MK_ERROR_INVALID_ARGUMENT)
        #expect(run([2, 28, 28, 1], inputs: 2).0 == MK_ERROR_INVALID_ARGUMENT)
        let (status, output) = run([2, 28, 28, 1], capacity: 19)
        #expect(status == MK_ERROR_BUFFER_TOO_SMALL)
        #expect(dims(of: output) == [2, 10])
        #expect(lastError.contains("needs 20 values"))
        // The session still works after every failure.
        #expect(run([2, 28, 28, 1], capacity: 20).0 == MK_OK)
        #expect(scores.allSatisfy { $0.isFinite } && abs(scores[0..<10].reduce(0, +) - 1) < 1e-4)
    }

    @Test func badOptionsAndMemory() {
        var options: OpaquePointer?
        #expect(mk_session_options_create(&options) == MK_OK)
        defer { mk_session_options_free(options) }
        #expect(mk_session_options_set_threads(options, 0) == MK_ERROR_INVALID_ARGUMENT)
        #expect(lastError == "threads must be 1...256, got 0")
        var model: OpaquePointer?
        let garbage: [UInt8] = Array("not a model at all".utf8)
        #expect(mk_model_load_from_memory(garbage, garbage.count, &model) == MK_ERROR_INVALID_MODEL)
        #expect(mk_model_load_from_memory(garbage, 0, &model) == MK_ERROR_INVALID_MODEL)
        #expect(model == nil)
    }
}
