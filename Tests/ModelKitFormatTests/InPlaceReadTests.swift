import ModelKitCore
import Testing
@testable import ModelKitFormat

/// `ModelFile.read(path:)` reads the frame into the end of the payload buffer and decompresses it
/// in place; these check that against the byte-array path on frames of every kind zstd writes.
@Suite("Reading a file into one payload buffer")
struct InPlaceReadTests {
    /// Raw-literal frames of several 128 KB blocks (weights), Huffman-coded ones, and frames much
    /// smaller than their payload (zeros at level 19).
    static let payloads: [(String, [UInt8], Int32)] = [
        ("weights, 3 blocks", RawLiteralsTests.weightBytes(count: 100_000), 9),
        ("weights, one block", RawLiteralsTests.weightBytes(count: 5_000), 19),
        ("zeros and weights", [UInt8](repeating: 0, count: 300_000) + RawLiteralsTests.weightBytes(count: 2_000), 19),
        ("text-like", Array(String(repeating: "conv2d relu maxpool dense softmax ", count: 8_000).utf8), 3),
        ("empty", [], 9),
    ]

    @Test("the payload read from a file equals the one decoded from its bytes", arguments: 0..<payloads.count)
    func samePayload(index: Int) throws {
        let (_, payload, level) = Self.payloads[index]
        let file = try ModelFile.container(payload: payload, compressionLevel: level)
        try TestSupport.withTemporaryDirectory { directory in
            let path = directory + "/payload.mkm"
            try FileSystem.writeFileAtomically(path, bytes: file)
            let (read, info) = try ModelFile.withPayload(path: path) { (Array($0), $1) }
            let (decoded, decodedInfo) = try ModelFile.payloadWithInfo(file)
            #expect(read == payload)
            #expect(read == decoded)
            #expect(info == decodedInfo)
        }
    }

    @Test("the buffer holds the payload plus zstd's in-place margin, or the whole frame when larger")
    func bufferSize() {
        #expect(PayloadBuffer.inPlaceSize(payloadSize: 0, frameSize: 13) == 18 + 4 + 3 + (128 << 10))
        #expect(PayloadBuffer.inPlaceSize(payloadSize: 1 << 20, frameSize: 1 << 20)
                == (1 << 20) + 18 + 4 + 3 * 9 + (128 << 10))
        #expect(PayloadBuffer.inPlaceSize(payloadSize: 10, frameSize: 1 << 21) == 1 << 21)
        #expect(PayloadBuffer.inPlaceSize(payloadSize: Int.max - 10, frameSize: 0) == nil)
    }

    @Test("a file cut inside its frame is a truncated frame, read from disk as from bytes")
    func truncatedOnDisk() throws {
        let file = try ModelFile.encode(SampleModels.small())
        try TestSupport.withTemporaryDirectory { directory in
            let path = directory + "/cut.mkm"
            try FileSystem.writeFileAtomically(path, bytes: Array(file.dropLast(7)))
            let error = TestSupport.formatError { try ModelFile.read(path: path) }
            guard case .truncatedFrame = error else {
                Issue.record("expected truncatedFrame, got \(String(describing: error))")
                return
            }
            #expect(error == TestSupport.formatError { try ModelFile.decode(Array(file.dropLast(7))) })
        }
    }
}
