import CModelKitAPI
import Foundation

/// The repository root, found from this file's path.
let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

func fixture(_ relative: String) -> String { repositoryRoot + "/Fixtures/" + relative }

/// The build products directory (where the test bundle, `modelkit` and libmodelkit_c.so live).
let productsDirectory: String = {
    let bundle = Bundle.main.bundleURL.path
    if FileManager.default.fileExists(atPath: bundle + "/libmodelkit_c.so") { return bundle }
    return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
}()

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

func runProcess(_ executable: String, _ arguments: [String]) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                         stderr: String(decoding: stderr, as: UTF8.self))
}

func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "modelkit-c-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

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
