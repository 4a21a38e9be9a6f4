import ModelKitCore
import Testing
@testable import ModelKitFormat

@Suite("Container header")
struct ContainerTests {
    /// A valid file whose header fields are then overwritten.
    static func file(major: UInt16 = 1, minor: UInt16 = 0, flags: UInt32 = 0, payloadSize: UInt64? = nil) throws -> [UInt8] {
        var bytes = try ModelFile.encode(SampleModels.small())
        let actualSize = UInt64(try ModelFile.info(bytes).payloadBytes)
        let header = ContainerHeader(version: FormatVersion(major: major, minor: minor), flags: flags,
                                     payloadSize: payloadSize ?? actualSize)
        bytes.replaceSubrange(0..<ContainerHeader.size, with: header.bytes)
        return bytes
    }

    @Test("header layout is the documented 24 little-endian bytes")
    func layout() {
        let header = ContainerHeader(version: FormatVersion(major: 1, minor: 2), flags: 0, payloadSize: 0x0102_0304_0506_0708)
        #expect(header.bytes == [0x89, 0x4D, 0x4B, 0x4D, 0x0D, 0x0A, 0x1A, 0x0A, 1, 0, 2, 0, 0, 0, 0, 0,
                                 8, 7, 6, 5, 4, 3, 2, 1])
    }

    @Test("written files start with the magic and version 1.1")
    func writtenHeader() throws {
        let bytes = try ModelFile.encode(SampleModels.small())
        #expect(Array(bytes.prefix(12)) == [0x89, 0x4D, 0x4B, 0x4D, 0x0D, 0x0A, 0x1A, 0x0A, 1, 0, 1, 0])
        let info = try ModelFile.info(bytes)
        #expect(info.version == FormatVersion(major: 1, minor: 1))
        #expect(info.fileBytes == bytes.count)
        #expect(info.frameBytes == bytes.count - 24)
        #expect(info.payloadBytes == (try ProtoEncoder.encode(SampleModels.small())).count)
    }

    @Test("a newer minor version is read")
    func newerMinor() throws {
        #expect(try ModelFile.decode(try Self.file(minor: 7)) == SampleModels.small())
    }

    @Test("a newer major version is rejected, naming both versions")
    func newerMajor() throws {
        let error = TestSupport.formatError { try ModelFile.decode(try Self.file(major: 3, minor: 1)) }
        #expect(error == .unsupportedVersion(found: FormatVersion(major: 3, minor: 1), supported: FormatVersion(major: 1, minor: 1)))
        #expect(error?.description == "file is format 3.1, this reader supports up to 1.x; upgrade modelkit")
    }

    @Test("major version 0 was never written and is rejected")
    func majorZero() throws {
        let error = TestSupport.formatError { try ModelFile.decode(try Self.file(major: 0, minor: 9)) }
        #expect(error == .unsupportedVersion(found: FormatVersion(major: 0, minor: 9), supported: FormatVersion(major: 1, minor: 1)))
    }

    @Test("unknown flags are rejected", arguments: [UInt32(1), 0x8000_0000])
    func unknownFlags(flags: UInt32) throws {
        let error = TestSupport.formatError { try ModelFile.decode(try Self.file(flags: flags)) }
        #expect(error == .unknownFlags(flags))
        #expect(error?.description.contains("flags") == true)
    }

    @Test("a declared payload above the limit is rejected before allocating")
    func payloadLimit() throws {
        let bytes = try Self.file()
        let size = try ModelFile.info(bytes).payloadBytes
        var limits = Limits.default
        limits.maxPayloadBytes = size - 1
        let error = TestSupport.formatError { try ModelFile.decode(bytes, limits: limits) }
        #expect(error == .payloadTooLarge(declared: UInt64(size), limit: size - 1))
        // At exactly the limit it is fine.
        limits.maxPayloadBytes = size
        #expect(try ModelFile.decode(bytes, limits: limits) == SampleModels.small())
    }

    @Test("a header size that disagrees with the frame is rejected", arguments: [-1, 1])
    func sizeMismatch(delta: Int) throws {
        let size = try ModelFile.info(try Self.file()).payloadBytes
        let declared = UInt64(size + delta)
        let error = TestSupport.formatError { try ModelFile.decode(try Self.file(payloadSize: declared)) }
        #expect(error == .payloadSizeMismatch(header: declared, frame: UInt64(size)))
    }

    @Test("compression ratio is payload over frame size")
    func ratio() {
        let info = ContainerInfo(version: ModelFile.formatVersion, payloadBytes: 300, frameBytes: 100, fileBytes: 124)
        #expect(info.compressionRatio == 3)
    }
}
