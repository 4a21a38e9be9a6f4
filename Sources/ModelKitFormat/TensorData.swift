import ModelKitCore

/// Tensor elements as raw little-endian bytes (the `Tensor.data` field) and back.
enum TensorData {
    /// Writes the elements of `storage` little endian into `out`, which holds exactly
    /// `storage.count * dtype.byteSize` bytes.
    static func write(_ storage: TensorStorage, into out: UnsafeMutableRawBufferPointer) {
        switch storage {
        case .float32(let values): store(values.map { $0.bitPattern }, into: out)
        case .int32(let values): store(values, into: out)
        case .int8(let values): store(values, into: out)
        case .uint8(let values): store(values, into: out)
        }
    }

    private static func store<T: FixedWidthInteger>(_ values: [T], into out: UnsafeMutableRawBufferPointer) {
        let size = MemoryLayout<T>.size
        for (index, value) in values.enumerated() {
            out.storeBytes(of: value.littleEndian, toByteOffset: index * size, as: T.self)
        }
    }

    /// Reads `count` elements of `dtype` from `data`, which the caller has checked holds exactly
    /// `count * dtype.byteSize` bytes.
    static func read(_ data: UnsafeRawBufferPointer, dtype: DType, count: Int) -> TensorStorage {
        switch dtype {
        case .float32:
            guard 1.littleEndian != 1 else { return .float32(copy(Float.self, data, count)) }
            return .float32(load(UInt32.self, data, count).map { Float(bitPattern: $0) })
        case .int32: return .int32(load(Int32.self, data, count))
        case .int8: return .int8(load(Int8.self, data, count))
        case .uint8: return .uint8(load(UInt8.self, data, count))
        }
    }

    /// The elements in one copy: the stored little-endian bytes are already the host's layout.
    private static func copy<T>(_ type: T.Type, _ data: UnsafeRawBufferPointer, _ count: Int) -> [T] {
        [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 {
                UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: data.baseAddress!, byteCount: count * MemoryLayout<T>.size)
            }
            initialized = count
        }
    }

    private static func load<T: FixedWidthInteger>(_ type: T.Type, _ data: UnsafeRawBufferPointer, _ count: Int) -> [T] {
        if 1.littleEndian == 1 { return copy(T.self, data, count) }
        let size = MemoryLayout<T>.size
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count {
                buffer[index] = T(littleEndian: data.loadUnaligned(fromByteOffset: index * size, as: T.self))
            }
            initialized = count
        }
    }
}
