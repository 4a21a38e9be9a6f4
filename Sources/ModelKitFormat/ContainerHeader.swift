import ModelKitCore

/// The fixed 24-byte header at the start of every .mkm/.mkc file (see Schemas/FORMAT.md).
///
///     offset size field
///          0    8 magic 89 4D 4B 4D 0D 0A 1A 0A
///          8    2 major version (u16 LE)
///         10    2 minor version (u16 LE)
///         12    4 flags (u32 LE), reserved, must be 0
///         16    8 uncompressed payload size (u64 LE)
package struct ContainerHeader: Hashable, Sendable {
    package static let size = 24
    package static let magic: [UInt8] = [0x89, 0x4D, 0x4B, 0x4D, 0x0D, 0x0A, 0x1A, 0x0A]
    package static let currentVersion = FormatVersion(major: 1, minor: 1)

    package var version: FormatVersion
    package var flags: UInt32
    package var payloadSize: UInt64

    package init(version: FormatVersion = ContainerHeader.currentVersion, flags: UInt32 = 0, payloadSize: UInt64) {
        self.version = version
        self.flags = flags
        self.payloadSize = payloadSize
    }

    package var bytes: [UInt8] {
        var out = ContainerHeader.magic
        out.reserveCapacity(ContainerHeader.size)
        func append<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
        }
        append(version.major)
        append(version.minor)
        append(flags)
        append(payloadSize)
        return out
    }

    /// Parses and checks the header: size, magic, version, flags, and the declared payload size
    /// against `limits` (before anything is allocated for it).
    package static func parse(_ bytes: UnsafeRawBufferPointer, limits: Limits) throws -> ContainerHeader {
        guard bytes.count > 0 else { throw FormatError.emptyFile }
        guard bytes.count >= size else { throw FormatError.truncatedHeader(size: bytes.count) }
        guard bytes.prefix(8).elementsEqual(magic) else { throw FormatError.badMagic(found: Array(bytes.prefix(8))) }
        func load<T: FixedWidthInteger>(_ offset: Int, as type: T.Type) -> T {
            T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        let header = ContainerHeader(version: FormatVersion(major: load(8, as: UInt16.self), minor: load(10, as: UInt16.self)),
                                     flags: load(12, as: UInt32.self), payloadSize: load(16, as: UInt64.self))
        // Version first: a newer major may give the flags a meaning.
        guard header.version.major == currentVersion.major else {
            throw FormatError.unsupportedVersion(found: header.version, supported: currentVersion)
        }
        guard header.flags == 0 else { throw FormatError.unknownFlags(header.flags) }
        guard let declared = Int(exactly: header.payloadSize), declared <= limits.maxPayloadBytes else {
            throw FormatError.payloadTooLarge(declared: header.payloadSize, limit: limits.maxPayloadBytes)
        }
        return header
    }
}

/// What `modelkit inspect` shows about the container of a file.
public struct ContainerInfo: Hashable, Sendable {
    /// The format version the file was written with.
    public var version: FormatVersion
    /// Uncompressed protobuf payload size in bytes.
    public var payloadBytes: Int
    /// Size of the zstd frame in bytes.
    public var frameBytes: Int
    /// Whole file size in bytes (header + frame).
    public var fileBytes: Int

    public init(version: FormatVersion, payloadBytes: Int, frameBytes: Int, fileBytes: Int) {
        self.version = version
        self.payloadBytes = payloadBytes
        self.frameBytes = frameBytes
        self.fileBytes = fileBytes
    }

    /// Payload bytes per frame byte (2.0 means the frame is half the payload's size).
    public var compressionRatio: Double {
        frameBytes > 0 ? Double(payloadBytes) / Double(frameBytes) : 0
    }
}
