import Foundation
import ModelKitCore
import Testing
@testable import ModelKitFormat
@_exported import ModelKitTestSupport

/// Paths, temporary directories and deterministic data shared by the format tests.
enum TestSupport {
    /// The repository root, found from this file's path (Tests/ModelKitFormatTests/Support.swift).
    static var repositoryRoot: String { ModelKitTestSupport.repositoryRoot }

    static func path(_ relative: String) -> String { repositoryRoot + "/" + relative }
    static func corruptFixture(_ name: String) -> String { path("Fixtures/corrupt/\(name)") }
    static var tinyCNNPath: String { path("Fixtures/models/tiny-cnn.mkm") }

    /// A fresh empty directory, removed when `body` returns.
    static func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("modelkit-format-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: url) }
        return try body(url.path)
    }

    /// Runs `body` and returns the FormatError it throws; records an issue and returns nil if it
    /// returns normally or throws something else.
    static func formatError<T>(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> T) -> FormatError? {
        do {
            let value = try body()
            Issue.record("expected a FormatError, got a result: \(value)", sourceLocation: sourceLocation)
        } catch let error as FormatError {
            return error
        } catch {
            Issue.record("expected a FormatError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    /// Files in a directory, for checking that no temporary file was left behind.
    static func listing(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }
}


/// A minimal protobuf wire-format writer, independent of protobuf-c, for payloads the Swift model
/// cannot express (an op from a newer writer) and for checking field numbers against FORMAT.md.
struct ProtoWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func tag(_ field: Int, wireType: Int) { varint(UInt64(field << 3 | wireType)) }

    mutating func int(_ field: Int, _ value: Int64) {
        tag(field, wireType: 0)
        varint(UInt64(bitPattern: value))
    }

    mutating func bytesField(_ field: Int, _ value: [UInt8]) {
        tag(field, wireType: 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String) { bytesField(field, Array(value.utf8)) }
    mutating func message(_ field: Int, _ value: ProtoWriter) { bytesField(field, value.bytes) }

    mutating func packedInts(_ field: Int, _ values: [Int64]) {
        var inner = ProtoWriter()
        for value in values { inner.varint(UInt64(bitPattern: value)) }
        bytesField(field, inner.bytes)
    }

    mutating func float(_ field: Int, _ value: Float) {
        tag(field, wireType: 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }
}
