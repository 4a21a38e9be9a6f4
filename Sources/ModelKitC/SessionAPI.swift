import CModelKitAPI
import ModelKitCore
import ModelKitRuntime

@_cdecl("mk_session_options_create")
public func mkSessionOptionsCreate(_ outOptions: UnsafeMutablePointer<OpaquePointer?>?) -> mk_status {
    guarded { () throws(CFailure) in
        try output(outOptions, "out_options").pointee = retained(OptionsHandle())
    }
}

@_cdecl("mk_session_options_set_threads")
public func mkSessionOptionsSetThreads(_ options: OpaquePointer?, _ threads: Int32) -> mk_status {
    guarded { () throws(CFailure) in
        guard let options else { throw .invalidArgument("options is NULL") }
        guard (1...256).contains(threads) else { throw .invalidArgument("threads must be 1...256, got \(threads)") }
        Unmanaged<OptionsHandle>.fromOpaque(UnsafeRawPointer(options)).takeUnretainedValue().threads = threads
    }
}

@_cdecl("mk_session_options_free")
public func mkSessionOptionsFree(_ options: OpaquePointer?) {
    release(options, as: OptionsHandle.self)
}

@_cdecl("mk_session_create")
public func mkSessionCreate(_ modelPointer: OpaquePointer?, _ optionsPointer: OpaquePointer?,
                            _ outSession: UnsafeMutablePointer<OpaquePointer?>?) -> mk_status {
    guarded { () throws(CFailure) in
        let model = try model(modelPointer)
        let out = try output(outSession, "out_session")
        var options = SessionOptions()
        if let optionsPointer {
            options.threads = Int(Unmanaged<OptionsHandle>.fromOpaque(UnsafeRawPointer(optionsPointer)).takeUnretainedValue().threads)
        }
        do {
            out.pointee = retained(SessionHandle(try Session(model: model.model, options: options)))
        } catch {
            throw CFailure.runtime(error, running: false)
        }
    }
}

@_cdecl("mk_session_free")
public func mkSessionFree(_ session: OpaquePointer?) {
    release(session, as: SessionHandle.self)
}

@_cdecl("mk_session_input_count")
public func mkSessionInputCount(_ handle: OpaquePointer?, _ outCount: UnsafeMutablePointer<Int>?) -> mk_status {
    guarded { () throws(CFailure) in
        let session = try session(handle)
        try output(outCount, "out_count").pointee = session.inputShapes.count
    }
}

@_cdecl("mk_session_output_count")
public func mkSessionOutputCount(_ handle: OpaquePointer?, _ outCount: UnsafeMutablePointer<Int>?) -> mk_status {
    guarded { () throws(CFailure) in
        let session = try session(handle)
        try output(outCount, "out_count").pointee = session.outputShapes.count
    }
}

/// Checks `index` against `count` for the error message's `what` ("input" or "output").
func checkIndex(_ index: Int, count: Int, _ what: String) throws(CFailure) {
    guard index >= 0, index < count else {
        throw .invalidArgument("\(what) index \(index) is out of range; the model has \(count) \(what)s")
    }
}

@_cdecl("mk_session_input_name")
public func mkSessionInputName(_ handle: OpaquePointer?, _ index: Int,
                               _ outName: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> mk_status {
    guarded { () throws(CFailure) in
        let session = try session(handle)
        let out = try output(outName, "out_name")
        try checkIndex(index, count: session.inputNames.pointers.count, "input")
        out.pointee = UnsafePointer(session.inputNames.pointers[index])
    }
}

@_cdecl("mk_session_output_name")
public func mkSessionOutputName(_ handle: OpaquePointer?, _ index: Int,
                                _ outName: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> mk_status {
    guarded { () throws(CFailure) in
        let session = try session(handle)
        let out = try output(outName, "out_name")
        try checkIndex(index, count: session.outputNames.pointers.count, "output")
        out.pointee = UnsafePointer(session.outputNames.pointers[index])
    }
}

@_cdecl("mk_session_input_dtype")
public func mkSessionInputDType(_ handle: OpaquePointer?, _ index: Int, _ outDType: UnsafeMutablePointer<mk_dtype>?) -> mk_status {
    guarded { () throws(CFailure) in
        let session = try session(handle)
        let out = try output(outDType, "out_dtype")
        try checkIndex(index, count: session.inputDTypes.count, "input")
        out.pointee = session.inputDTypes[index].cValue
    }
}

@_cdecl("mk_session_output_dtype")
public func mkSessionOutputDType(_ handle: OpaquePointer?, _ index: Int, _ outDType: UnsafeMutablePointer<mk_dtype>?) -> mk_status {
    guarded { () throws(CFailure) in
        let session = try session(handle)
        let out = try output(outDType, "out_dtype")
        try checkIndex(index, count: session.outputDTypes.count, "output")
        out.pointee = session.outputDTypes[index].cValue
    }
}

/// Writes `shape` for the shape functions: the rank always, the dims when they fit.
func writeShape(_ shape: [Int64], dims: UnsafeMutablePointer<Int64>?, capacity: Int,
                outRank: UnsafeMutablePointer<Int>?) throws(CFailure) {
    let rank = try output(outRank, "out_rank")
    rank.pointee = shape.count
    guard capacity >= shape.count else {
        throw CFailure(status: MK_ERROR_BUFFER_TOO_SMALL, message: "shape has rank \(shape.count), dims holds \(capacity)")
    }
    guard !shape.isEmpty else { return }
    let destination = try output(dims, "dims")
    for (axis, size) in shape.enumerated() { destination[axis] = size }
}

@_cdecl("mk_session_input_shape")
public func mkSessionInputShape(_ handle: OpaquePointer?, _ index: Int, _ dims: UnsafeMutablePointer<Int64>?,
                                _ capacity: Int, _ outRank: UnsafeMutablePointer<Int>?) -> mk_status {
    guarded { () throws(CFailure) in
        let session = try session(handle)
        try checkIndex(index, count: session.inputShapes.count, "input")
        try writeShape(session.inputShapes[index], dims: dims, capacity: capacity, outRank: outRank)
    }
}

@_cdecl("mk_session_output_shape")
public func mkSessionOutputShape(_ handle: OpaquePointer?, _ index: Int, _ dims: UnsafeMutablePointer<Int64>?,
                                 _ capacity: Int, _ outRank: UnsafeMutablePointer<Int>?) -> mk_status {
    guarded { () throws(CFailure) in
        let session = try session(handle)
        try checkIndex(index, count: session.outputShapes.count, "output")
        try writeShape(session.outputShapes[index], dims: dims, capacity: capacity, outRank: outRank)
    }
}
