import CModelKitAPI
import ModelKitCore
import ModelKitRuntime

extension SessionHandle {
    /// Fills the reusable run buffers from the C structs. Builds a new `Shape` only when an
    /// input's shape differs from the previous run's, so steady-state runs allocate nothing.
    func bind(inputs: UnsafePointer<mk_input>, outputs: UnsafeMutablePointer<mk_output>) throws(CFailure) {
        let inputCount = inputShapes.count
        if inputBuffers.count != inputCount {
            inputBuffers = (0..<inputCount).map { _ in
                InputBuffer(data: UnsafePointer(bitPattern: placeholderAddress)!, count: -1, shape: Shape([]))
            }
        }
        for index in 0..<inputCount {
            let input = inputs[index]
            let name = session.model.graph.inputs[index].name
            guard let data = input.data else { throw .invalidArgument("inputs[\(index)].data is NULL") }
            guard input.rank <= Int(MK_MAX_RANK) else {
                throw .invalidArgument("inputs[\(index)].rank is \(input.rank), at most \(MK_MAX_RANK)")
            }
            let dims = input.shape
            let same = withUnsafeBytes(of: dims) { raw -> Bool in
                let values = raw.bindMemory(to: Int64.self)
                let current = inputBuffers[index].shape.dims
                guard current.count == input.rank else { return false }
                for axis in 0..<input.rank where Int64(current[axis]) != values[axis] { return false }
                return true
            }
            if !same {
                let shape = withUnsafeBytes(of: dims) { raw in
                    Shape(raw.bindMemory(to: Int64.self).prefix(input.rank).map { Int($0) })
                }
                guard shape.dims.allSatisfy({ $0 >= 0 }) else {
                    throw CFailure(status: MK_ERROR_SHAPE_MISMATCH, message: "input '\(name)' has a negative dimension in \(shape)")
                }
                inputBuffers[index].shape = shape
            }
            inputBuffers[index].data = data
            inputBuffers[index].count = input.count
        }
        let outputCount = outputShapes.count
        if outputBuffers.count != outputCount {
            outputBuffers = (0..<outputCount).map { _ in
                OutputBuffer(data: UnsafeMutablePointer(bitPattern: placeholderAddress)!, capacity: 0)
            }
        }
        for index in 0..<outputCount {
            guard let data = outputs[index].data else { throw .invalidArgument("outputs[\(index)].data is NULL") }
            outputBuffers[index].data = data
            outputBuffers[index].capacity = outputs[index].capacity
        }
    }

    /// Writes the planned output shapes into the C structs.
    func reportShapes(_ outputs: UnsafeMutablePointer<mk_output>) {
        for index in 0..<outputShapes.count {
            let shape = session.plannedOutputShape(index)
            outputs[index].rank = shape.rank
            withUnsafeMutableBytes(of: &outputs[index].shape) { raw in
                let dims = raw.bindMemory(to: Int64.self)
                for axis in 0..<min(shape.rank, dims.count) { dims[axis] = Int64(shape[axis]) }
            }
        }
    }
}

/// A placeholder address for run buffers before their first binding (never dereferenced).
let placeholderAddress = MemoryLayout<Float>.alignment  // a non-zero, aligned bit pattern

@_cdecl("mk_session_run")
public func mkSessionRun(_ handle: OpaquePointer?, _ inputs: UnsafePointer<mk_input>?, _ inputCount: Int,
                         _ outputs: UnsafeMutablePointer<mk_output>?, _ outputCount: Int) -> mk_status {
    guarded { () throws(CFailure) in
        let session = try session(handle)
        guard inputCount == session.inputShapes.count else {
            throw .invalidArgument("got \(inputCount) inputs, the model has \(session.inputShapes.count)")
        }
        guard outputCount == session.outputShapes.count else {
            throw .invalidArgument("got \(outputCount) outputs, the model has \(session.outputShapes.count)")
        }
        guard let inputs else { throw .invalidArgument("inputs is NULL") }
        guard let outputs else { throw .invalidArgument("outputs is NULL") }
        try session.bind(inputs: inputs, outputs: outputs)
        do {
            try session.session.run(inputs: session.inputBuffers, outputs: session.outputBuffers)
            session.reportShapes(outputs)
        } catch {
            if case RuntimeError.outputBufferTooSmall = error { session.reportShapes(outputs) }
            throw CFailure.runtime(error, running: true)
        }
    }
}
