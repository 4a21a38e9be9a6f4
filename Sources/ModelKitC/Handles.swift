import CModelKitAPI
import Glibc
import ModelKitCore
import ModelKitFormat
import ModelKitRuntime

/// Owns malloc'd C copies of strings handed out to C callers; they live as long as the owner.
final class CStrings {
    let pointers: [UnsafeMutablePointer<CChar>]

    init(_ strings: [String]) {
        pointers = strings.map { $0.withCString { strdup($0)! } }
    }

    deinit { for pointer in pointers { free(pointer) } }
}

/// What an `mk_model *` points to.
final class ModelHandle {
    let model: Model
    let labels: CStrings

    init(_ model: Model) {
        self.model = model
        labels = CStrings(model.metadata.labels)
    }
}

/// What an `mk_session_options *` points to.
final class OptionsHandle {
    var threads: Int32 = 1
}

/// What an `mk_session *` points to: the session, its I/O descriptions, and the run buffers
/// reused from run to run so a run at unchanged shapes allocates nothing.
final class SessionHandle {
    let session: Session
    let inputNames: CStrings
    let outputNames: CStrings
    let inputShapes: [[Int64]]
    let outputShapes: [[Int64]]
    let inputDTypes: [DType]
    let outputDTypes: [DType]
    var inputBuffers: [InputBuffer] = []
    var outputBuffers: [OutputBuffer] = []

    init(_ session: Session) {
        self.session = session
        let graph = session.model.graph
        inputNames = CStrings(graph.inputs.map(\.name))
        outputNames = CStrings(session.outputs.map(\.name))
        inputShapes = graph.inputs.map { $0.shape.dims.map(Int64.init) }
        outputShapes = SessionHandle.declaredOutputShapes(session)
        inputDTypes = graph.inputs.map(\.dtype)
        outputDTypes = session.outputs.map(\.dtype)
    }

    /// Output shapes with -1 where they follow a dynamic input dimension: the graph is analysed
    /// with every dynamic input dimension at 1 and at 2, and dimensions that differ are dynamic.
    static func declaredOutputShapes(_ session: Session) -> [[Int64]] {
        let graph = session.model.graph
        let atOne = session.outputs.map { $0.shape.dims.map(Int64.init) }
        guard graph.inputs.contains(where: { $0.shape.dims.contains(-1) }) else { return atOne }
        var shapes: [String: Shape] = [:]
        for input in graph.inputs { shapes[input.name] = Shape(input.shape.dims.map { $0 == -1 ? 2 : $0 }) }
        guard let analysis = try? graph.analyze(inputShapes: shapes, limits: session.options.limits) else { return atOne }
        return zip(graph.outputs, atOne).map { name, one in
            guard let two = analysis.values[name]?.shape.dims, two.count == one.count else { return one }
            return zip(one, two).map { $0 == Int64($1) ? $0 : -1 }
        }
    }
}

@inline(__always)
func model(_ pointer: OpaquePointer?) throws(CFailure) -> ModelHandle {
    guard let pointer else { throw .invalidArgument("model is NULL") }
    return Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
}

@inline(__always)
func session(_ pointer: OpaquePointer?) throws(CFailure) -> SessionHandle {
    guard let pointer else { throw .invalidArgument("session is NULL") }
    return Unmanaged<SessionHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
}

@inline(__always)
func output<T>(_ pointer: UnsafeMutablePointer<T>?, _ what: String) throws(CFailure) -> UnsafeMutablePointer<T> {
    guard let pointer else { throw .invalidArgument("\(what) is NULL") }
    return pointer
}

func retained(_ object: AnyObject) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(object).toOpaque())
}

func release<T: AnyObject>(_ pointer: OpaquePointer?, as type: T.Type) {
    guard let pointer else { return }
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(pointer)).release()
}

extension DType {
    var cValue: mk_dtype {
        switch self {
        case .float32: return MK_DTYPE_FLOAT32
        case .int8: return MK_DTYPE_INT8
        case .uint8: return MK_DTYPE_UINT8
        case .int32: return MK_DTYPE_INT32
        }
    }
}
