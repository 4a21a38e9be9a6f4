import CModelKitAPI
import ModelKitCore
import ModelKitFormat

@_cdecl("mk_model_load")
public func mkModelLoad(_ path: UnsafePointer<CChar>?, _ outModel: UnsafeMutablePointer<OpaquePointer?>?) -> mk_status {
    guarded { () throws(CFailure) in
        guard let path else { throw .invalidArgument("path is NULL") }
        let out = try output(outModel, "out_model")
        let text = String(cString: path)
        do {
            out.pointee = retained(ModelHandle(try ModelFile.read(path: text)))
        } catch FormatError.io(let error) {
            throw CFailure.loading(FormatError.io(error))
        } catch {
            var failure = CFailure.loading(error)
            failure.message = "\(text): \(failure.message)"
            throw failure
        }
    }
}

@_cdecl("mk_model_load_from_memory")
public func mkModelLoadFromMemory(_ data: UnsafeRawPointer?, _ size: Int,
                                  _ outModel: UnsafeMutablePointer<OpaquePointer?>?) -> mk_status {
    guarded { () throws(CFailure) in
        guard let data else { throw .invalidArgument("data is NULL") }
        let out = try output(outModel, "out_model")
        let bytes = [UInt8](UnsafeRawBufferPointer(start: data, count: size))
        do {
            out.pointee = retained(ModelHandle(try ModelFile.decode(bytes)))
        } catch {
            throw CFailure.loading(error)
        }
    }
}

@_cdecl("mk_model_free")
public func mkModelFree(_ model: OpaquePointer?) {
    release(model, as: ModelHandle.self)
}

@_cdecl("mk_model_label_count")
public func mkModelLabelCount(_ handle: OpaquePointer?, _ outCount: UnsafeMutablePointer<Int>?) -> mk_status {
    guarded { () throws(CFailure) in
        let model = try model(handle)
        try output(outCount, "out_count").pointee = model.labels.pointers.count
    }
}

@_cdecl("mk_model_label")
public func mkModelLabel(_ handle: OpaquePointer?, _ index: Int,
                         _ outLabel: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> mk_status {
    guarded { () throws(CFailure) in
        let model = try model(handle)
        let out = try output(outLabel, "out_label")
        let labels = model.labels.pointers
        guard index >= 0, index < labels.count else {
            throw .invalidArgument("label index \(index) is out of range; the model has \(labels.count) labels")
        }
        out.pointee = UnsafePointer(labels[index])
    }
}

@_cdecl("mk_model_input_normalization")
public func mkModelInputNormalization(_ handle: OpaquePointer?, _ channels: Int,
                                      _ outScale: UnsafeMutablePointer<Float>?, _ outMean: UnsafeMutablePointer<Float>?,
                                      _ outStd: UnsafeMutablePointer<Float>?) -> mk_status {
    guarded { () throws(CFailure) in
        let model = try model(handle)
        let scale = try output(outScale, "out_pixel_scale")
        let mean = try output(outMean, "out_mean")
        let std = try output(outStd, "out_std")
        guard channels >= 1 else { throw .invalidArgument("channels must be at least 1, got \(channels)") }
        let normalization = model.model.metadata.normalization ?? InputNormalization()
        scale.pointee = normalization.pixelScale
        for channel in 0..<channels {
            mean[channel] = normalization.mean.isEmpty ? 0 : normalization.mean[channel % normalization.mean.count]
            std[channel] = normalization.std.isEmpty ? 1 : normalization.std[channel % normalization.std.count]
        }
    }
}
