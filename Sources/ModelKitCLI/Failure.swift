import ArgumentParser
import Foundation
import ModelKitCore
import ModelKitData
import ModelKitFormat
import ModelKitRuntime

/// Documented exit codes (sysexits.h values, so scripts can tell the causes apart).
enum ExitStatus {
    static let usage: Int32 = 64
    static let dataError: Int32 = 65
    static let noInput: Int32 = 66
    static let software: Int32 = 70
    static let cannotCreate: Int32 = 73
}

/// A command-level failure with its own message and exit status.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    var status: Int32

    static func usage(_ message: String) -> CommandFailure { CommandFailure(description: message, status: ExitStatus.usage) }
    static func data(_ message: String) -> CommandFailure { CommandFailure(description: message, status: ExitStatus.dataError) }
}

/// Runs `body`, turning any error into one line on stderr and a documented exit code.
func reportingFailures(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch {
        let (message, status) = describe(error)
        FileHandle.standardError.write(Data("modelkit: error: \(message)\n".utf8))
        throw ExitCode(status)
    }
}

func describe(_ error: Error) -> (String, Int32) {
    switch error {
    case let failure as CommandFailure:
        return (failure.description, failure.status)
    case let error as FileError:
        switch error {
        case .notFound: return (error.description, ExitStatus.noInput)
        case .writeFailed: return (error.description, ExitStatus.cannotCreate)
        default: return (error.description, ExitStatus.dataError)
        }
    case DataError.file(let error):
        return describe(error)
    case FormatError.io(let error):
        return describe(error)  // a model that cannot be written is exit 73, not "invalid data"
    case DataError.missingFiles:
        return ("\(error)", ExitStatus.noInput)
    case let error as CustomStringConvertible:
        return (error.description, ExitStatus.dataError)
    default:
        return ("\(error)", ExitStatus.software)
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("modelkit: \(message)\n".utf8))
}
