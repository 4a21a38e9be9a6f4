import CModelKitAPI
import Foundation
@_exported import ModelKitTestSupport

/// The build products directory (where the test bundle, `modelkit` and libmodelkit_c.so live).
let productsDirectory: String = {
    let bundle = Bundle.main.bundleURL.path
    if FileManager.default.fileExists(atPath: bundle + "/libmodelkit_c.so") { return bundle }
    return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
}()

var lastError: String { String(cString: mk_last_error_message()) }

/// Loads a model through the C API, failing the test with the C message otherwise.
struct CAPIError: Error, CustomStringConvertible {
    var status: mk_status
    var description: String
}

func loadModel(_ path: String) throws -> OpaquePointer {
    var model: OpaquePointer?
    let status = mk_model_load(path, &model)
    guard status == MK_OK, let model else { throw CAPIError(status: status, description: lastError) }
    return model
}

func createSession(_ model: OpaquePointer, threads: Int32 = 1) throws -> OpaquePointer {
    var options: OpaquePointer?
    guard mk_session_options_create(&options) == MK_OK else { throw CAPIError(status: MK_ERROR_INTERNAL, description: lastError) }
    defer { mk_session_options_free(options) }
    let set = mk_session_options_set_threads(options, threads)
    guard set == MK_OK else { throw CAPIError(status: set, description: lastError) }
    var session: OpaquePointer?
    let status = mk_session_create(model, options, &session)
    guard status == MK_OK, let session else { throw CAPIError(status: status, description: lastError) }
    return session
}

/// An mk_input over `values` with `shape` (valid while `values` is).
func makeInput(_ values: UnsafeBufferPointer<Float>, shape: [Int64]) -> mk_input {
    var input = mk_input()
    input.data = values.baseAddress
    input.count = values.count
    input.rank = shape.count
    withUnsafeMutableBytes(of: &input.shape) { raw in
        let dims = raw.bindMemory(to: Int64.self)
        for (axis, size) in shape.prefix(dims.count).enumerated() { dims[axis] = size }
    }
    return input
}

func dims(of output: mk_output) -> [Int64] {
    withUnsafeBytes(of: output.shape) { Array($0.bindMemory(to: Int64.self).prefix(output.rank)) }
}
