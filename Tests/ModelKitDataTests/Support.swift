#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ModelKitCore
@testable import ModelKitData
import Testing

/// `Fixtures/data/<relative>` in this repository, found from this file's path.
func fixture(_ relative: String, filePath: String = #filePath) -> String {
    var parts = filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/ModelKitDataTests/Support.swift
    return parts.joined(separator: "/") + "/Fixtures/data/" + relative
}

/// A fresh directory under /tmp, removed (with the files tests put in it) by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() {
        var template = Array("/tmp/modelkit-data-test-XXXXXX".utf8CString)
        let result = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(result != nil, "mkdtemp failed")
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() {
        guard let directory = opendir(path) else { return }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { unlink(file(name)) }
        }
        closedir(directory)
        rmdir(path)
    }
}

/// The case name of a `DataError`, for comparing against an expected kind.
func kind(_ error: DataError) -> String {
    switch error {
    case .file: return "file"
    case .badMagic: return "badMagic"
    case .truncated: return "truncated"
    case .countMismatch: return "countMismatch"
    case .tooLarge: return "tooLarge"
    case .unsupported: return "unsupported"
    case .malformed: return "malformed"
    case .badChecksum: return "badChecksum"
    case .badCompressedData: return "badCompressedData"
    case .missingFiles: return "missingFiles"
    }
}

/// Runs `body`, expects a `DataError` of `expectedKind` whose one-line message mentions every
/// string in `mentions`, and returns the error.
@discardableResult
func expectDataError(_ expectedKind: String, mentions: [String] = [], sourceLocation: SourceLocation = #_sourceLocation,
                     _ body: () throws -> Void) -> DataError? {
    do {
        try body()
        Issue.record("expected DataError.\(expectedKind), but no error was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as DataError {
        #expect(kind(error) == expectedKind, "\(error)", sourceLocation: sourceLocation)
        let message = error.description
        #expect(!message.contains("\n"), "message is not one line: \(message)", sourceLocation: sourceLocation)
        for text in mentions {
            #expect(message.contains(text), "'\(message)' does not mention '\(text)'", sourceLocation: sourceLocation)
        }
        return error
    } catch {
        Issue.record("expected DataError.\(expectedKind), got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Deterministic pseudo-random bytes (SplitMix64), so failures reproduce.
func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return UInt8(truncatingIfNeeded: z ^ (z >> 31))
    }
}
