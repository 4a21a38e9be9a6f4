import ModelKitCore
import Testing
@testable import ModelKitFormat

@Suite("zstd frame")
struct ZstdTests {
    @Test("levels 1 and 19 both round-trip, and the higher level is not larger", arguments: [Int32(1), 19])
    func levels(level: Int32) throws {
        let model = SampleModels.everyOp()
        let bytes = try ModelFile.encode(model, compressionLevel: level)
        #expect(try ModelFile.decode(bytes) == model)
    }

    @Test("levels change the output")
    func levelsDiffer() throws {
        // Repetitive weights give zstd something to work with, so levels make a difference.
        var model = SampleModels.small()
        model.graph.initializers["table"] = Tensor(shape: [4096], floats: (0..<4096).map { Float($0 % 97) * 0.25 })
        let fast = try ModelFile.encode(model, compressionLevel: 1)
        let strong = try ModelFile.encode(model, compressionLevel: 19)
        #expect(fast != strong)
        #expect(strong.count <= fast.count)
        #expect(try ModelFile.decode(fast) == model)
        #expect(try ModelFile.decode(strong) == model)
    }

    @Test("the frame carries zstd's content checksum")
    func checksumFlag() throws {
        let bytes = try ModelFile.encode(SampleModels.small())
        #expect(Array(bytes[24..<28]) == [0x28, 0xB5, 0x2F, 0xFD])
        #expect(bytes[28] & 0x04 != 0)
    }

    @Test("a frame without content checksum is rejected")
    func missingChecksum() throws {
        let payload = try ProtoEncoder.encode(SampleModels.small())
        let bytes = try ModelFile.container(payload: payload, checksum: false)
        let error = TestSupport.formatError { try ModelFile.decode(bytes) }
        #expect(error == .missingChecksum)
    }

    @Test("an out-of-range level is a clear error", arguments: [Int32(23), 1000])
    func badLevel(level: Int32) {
        let error = TestSupport.formatError { try ModelFile.encode(SampleModels.small(), compressionLevel: level) }
        guard case .compressionFailed(let reason) = error else {
            Issue.record("expected compressionFailed, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("level \(level)"))
    }

    @Test("bytes after the frame are rejected with their offset")
    func trailingBytes() throws {
        let bytes = try ModelFile.encode(SampleModels.small())
        let error = TestSupport.formatError { try ModelFile.decode(bytes + [0, 0, 0]) }
        #expect(error == .trailingBytes(offset: bytes.count, count: 3))
    }
}

@Suite("zstd literals of weights")
struct RawLiteralsTests {
    /// Float32 bit patterns of values spread like trained weights: the exponent bytes repeat, so
    /// Huffman coding saves a few percent, but there are almost no matches.
    static func weightBytes(count: Int) -> [UInt8] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var bytes: [UInt8] = []
        for _ in 0..<count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let value = (Float(state >> 40) / Float(1 << 24) - 0.5) * 0.2
            withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    @Test("a payload that compresses by less than an eighth is stored with raw literals", arguments: [Int32(3), 9, 19])
    func weightsAreNotHuffmanCoded(level: Int32) throws {
        let payload = Self.weightBytes(count: 20_000)
        let huffman = try payload.withUnsafeBytes { try ZstdFrame.compress($0, level: level) }
        #expect(huffman.count < payload.count, "the level itself still compresses literals")
        let file = try ModelFile.container(payload: payload, compressionLevel: level)
        #expect(file.count - ContainerHeader.size >= payload.count, "raw literals: no smaller than the payload")
        #expect(try ModelFile.payloadWithInfo(file).0 == payload)
    }

    @Test("a payload that compresses well keeps the requested level")
    func compressiblePayloadKeepsItsLevel() throws {
        let payload = [UInt8](repeating: 0, count: 40_000) + Self.weightBytes(count: 1_000)
        let file = try ModelFile.container(payload: payload, compressionLevel: 19)
        let direct = try payload.withUnsafeBytes { try ZstdFrame.compress($0, level: 19) }
        #expect(Array(file[ContainerHeader.size...]) == direct)
        #expect(try ModelFile.payloadWithInfo(file).0 == payload)
    }
}
