import CModelKitAPI
import Glibc
import ModelKitCore
import ModelKitFormat
import ModelKitRuntime

/// A failure on its way to a C caller: a status code and a one-line message.
struct CFailure: Error {
    var status: mk_status
    var message: String

    static func invalidArgument(_ message: String) -> CFailure { CFailure(status: MK_ERROR_INVALID_ARGUMENT, message: message) }

    /// Maps load errors: a missing file, an unreadable one, or a bad model.
    static func loading(_ error: Error) -> CFailure {
        switch error {
        case FormatError.io(let fileError):
            if case .notFound = fileError { return CFailure(status: MK_ERROR_NOT_FOUND, message: fileError.description) }
            return CFailure(status: MK_ERROR_IO, message: fileError.description)
        case let error as FormatError:
            return CFailure(status: MK_ERROR_INVALID_MODEL, message: error.description)
        default:
            return other(error)
        }
    }

    /// Maps session errors; `running` tells a run (shapes came from the caller) from creation.
    static func runtime(_ error: Error, running: Bool) -> CFailure {
        guard let error = error as? RuntimeError else { return other(error) }
        let status: mk_status
        switch error {
        case .invalidGraph: status = running ? MK_ERROR_SHAPE_MISMATCH : MK_ERROR_INVALID_MODEL
        case .unsupportedDType: status = MK_ERROR_INVALID_MODEL
        case .unknownInput, .missingInput, .inputShapeMismatch, .inputDataLength: status = MK_ERROR_SHAPE_MISMATCH
        case .bufferCount, .notSingleInputOutput: status = MK_ERROR_INVALID_ARGUMENT
        case .outputBufferTooSmall: status = MK_ERROR_BUFFER_TOO_SMALL
        case .outOfMemory: status = MK_ERROR_OUT_OF_MEMORY
        @unknown default: status = MK_ERROR_INTERNAL
        }
        return CFailure(status: status, message: error.description)
    }

    static func other(_ error: Error) -> CFailure {
        CFailure(status: MK_ERROR_INTERNAL, message: (error as? CustomStringConvertible)?.description ?? "\(error)")
    }
}

/// Per-thread storage of the last error message, as a malloc'd C string freed on replacement
/// and at thread exit.
let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    let created = pthread_key_create(&key) { free($0) }
    precondition(created == 0, "pthread_key_create failed")
    return key
}()

/// The empty message returned before any failure (a static, NUL-terminated literal).
let emptyMessage: StaticString = ""

/// Records `failure` for `mk_last_error_message` and returns its status as the C return value.
func record(_ failure: CFailure) -> mk_status {
    let previous = pthread_getspecific(lastErrorKey)
    let message = failure.message.withCString { strdup($0) }
    pthread_setspecific(lastErrorKey, message.map { UnsafeRawPointer($0) })
    free(previous)
    return failure.status
}

/// Runs `body`, turning a thrown `CFailure` into its recorded status.
@inline(__always)
func guarded(_ body: () throws(CFailure) -> Void) -> mk_status {
    do {
        try body()
        return MK_OK
    } catch {
        return record(error)
    }
}

@_cdecl("mk_last_error_message")
public func mkLastErrorMessage() -> UnsafePointer<CChar> {
    if let message = pthread_getspecific(lastErrorKey) {
        return UnsafePointer(message.assumingMemoryBound(to: CChar.self))
    }
    return UnsafeRawPointer(emptyMessage.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("mk_status_name")
public func mkStatusName(_ status: mk_status) -> UnsafePointer<CChar> {
    let name: StaticString
    switch status {
    case MK_OK: name = "MK_OK"
    case MK_ERROR_INVALID_ARGUMENT: name = "MK_ERROR_INVALID_ARGUMENT"
    case MK_ERROR_NOT_FOUND: name = "MK_ERROR_NOT_FOUND"
    case MK_ERROR_IO: name = "MK_ERROR_IO"
    case MK_ERROR_INVALID_MODEL: name = "MK_ERROR_INVALID_MODEL"
    case MK_ERROR_SHAPE_MISMATCH: name = "MK_ERROR_SHAPE_MISMATCH"
    case MK_ERROR_BUFFER_TOO_SMALL: name = "MK_ERROR_BUFFER_TOO_SMALL"
    case MK_ERROR_OUT_OF_MEMORY: name = "MK_ERROR_OUT_OF_MEMORY"
    case MK_ERROR_INTERNAL: name = "MK_ERROR_INTERNAL"
    default: name = "MK_UNKNOWN_STATUS"
    }
    return UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// The version as a C string that lives for the whole process.
nonisolated(unsafe) let versionCString: UnsafeMutablePointer<CChar> = strdup(ModelKitVersion.string)!

@_cdecl("mk_version")
public func mkVersion() -> UnsafePointer<CChar> {
    UnsafePointer(versionCString)
}
