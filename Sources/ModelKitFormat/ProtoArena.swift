#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns every C allocation made while building a protobuf-c message tree for packing; all of it
/// is freed when the arena goes away, so a failed encode leaks nothing.
final class ProtoArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit {
        for pointer in allocations { free(pointer) }
    }

    /// Zeroed storage for `count` values of `T`.
    func allocate<T>(_ type: T.Type, count: Int) throws -> UnsafeMutablePointer<T> {
        guard let raw = calloc(max(count, 1), MemoryLayout<T>.stride) else {
            throw FormatError.encodingFailed(reason: "out of memory allocating \(count) protobuf values")
        }
        allocations.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// A protobuf-c message initialised by its generated `__init` function.
    func message<T>(_ type: T.Type, _ initialize: (UnsafeMutablePointer<T>) -> Void) throws -> UnsafeMutablePointer<T> {
        let pointer = try allocate(type, count: 1)
        initialize(pointer)
        return pointer
    }

    func array<T>(_ values: [T]) throws -> UnsafeMutablePointer<T>? {
        guard !values.isEmpty else { return nil }
        let pointer = try allocate(T.self, count: values.count)
        pointer.initialize(from: values, count: values.count)
        return pointer
    }

    /// An array of message pointers, for repeated message fields.
    func pointers<T>(_ values: [UnsafeMutablePointer<T>]) throws -> UnsafeMutablePointer<UnsafeMutablePointer<T>?>? {
        try array(values.map { Optional($0) })
    }

    func string(_ value: String) throws -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(value.utf8CString)
        guard utf8.dropLast().allSatisfy({ $0 != 0 }) else {
            throw FormatError.encodingFailed(reason: "text '\(value.prefix(40))' contains a NUL character")
        }
        let pointer = try allocate(CChar.self, count: utf8.count)
        for (index, byte) in utf8.enumerated() { (pointer + index).initialize(to: byte) }
        return pointer
    }

    func strings(_ values: [String]) throws -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        try array(values.map { Optional(try string($0)) })
    }

    /// Raw bytes for a `bytes` field.
    func bytes(count: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws -> UnsafeMutablePointer<UInt8>? {
        guard count > 0 else { return nil }
        let pointer = try allocate(UInt8.self, count: count)
        fill(UnsafeMutableRawBufferPointer(start: pointer, count: count))
        return pointer
    }
}
