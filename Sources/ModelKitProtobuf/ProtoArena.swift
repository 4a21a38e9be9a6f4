#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CProtobufC

/// Owns every C allocation made while building a protobuf-c message tree for packing; all of it
/// is freed when the arena goes away, so a failed encode leaks nothing. Shared by the modelkit
/// format writer and the ONNX writer; each passes the error type its callers expect.
public final class ProtoArena {
    private var allocations: [UnsafeMutableRawPointer] = []
    private let failure: (String) -> Error

    /// - Parameter failure: makes the error thrown when an allocation or a string is refused.
    public init(failure: @escaping (String) -> Error) {
        self.failure = failure
    }

    deinit {
        for pointer in allocations { free(pointer) }
    }

    /// Zeroed storage for `count` values of `T`.
    public func allocate<T>(_ type: T.Type, count: Int) throws -> UnsafeMutablePointer<T> {
        guard let raw = calloc(max(count, 1), MemoryLayout<T>.stride) else {
            throw failure("out of memory allocating \(count) protobuf values")
        }
        allocations.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// A protobuf-c message initialised by its generated `__init` function.
    public func message<T>(_ initialize: (UnsafeMutablePointer<T>) -> Void) throws -> UnsafeMutablePointer<T> {
        let pointer = try allocate(T.self, count: 1)
        initialize(pointer)
        return pointer
    }

    public func array<T>(_ values: [T]) throws -> UnsafeMutablePointer<T>? {
        guard !values.isEmpty else { return nil }
        let pointer = try allocate(T.self, count: values.count)
        pointer.initialize(from: values, count: values.count)
        return pointer
    }

    /// An array of message pointers, for repeated message fields.
    public func pointers<T>(_ values: [UnsafeMutablePointer<T>]) throws -> UnsafeMutablePointer<UnsafeMutablePointer<T>?>? {
        try array(values.map { Optional($0) })
    }

    /// A NUL-terminated copy; text with an embedded NUL cannot be a C string and is refused.
    public func string(_ value: String) throws -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(value.utf8CString)
        guard utf8.dropLast().allSatisfy({ $0 != 0 }) else {
            throw failure("text '\(value.prefix(40))' contains a NUL character")
        }
        let pointer = try allocate(CChar.self, count: utf8.count)
        pointer.initialize(from: utf8, count: utf8.count)
        return pointer
    }

    public func strings(_ values: [String]) throws -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        try array(values.map { Optional(try string($0)) })
    }

    /// Raw bytes for a `bytes` field, filled in place.
    public func bytes(count: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws -> UnsafeMutablePointer<UInt8>? {
        guard count > 0 else { return nil }
        let pointer = try allocate(UInt8.self, count: count)
        fill(UnsafeMutableRawBufferPointer(start: pointer, count: count))
        return pointer
    }

    /// A `bytes` field holding a copy of `values`.
    public func bytes(_ values: [UInt8]) throws -> ProtobufCBinaryData {
        ProtobufCBinaryData(len: values.count, data: try array(values))
    }
}
