import ModelKitCore
import Testing
@testable import ModelKitFormat

/// `ModelFile.read(path:)` reads the frame into the block the message tree is then unpacked into
/// (`UnpackArena`) and decompresses it into a payload buffer of its own; these check that against
/// the byte-array path on frames of every kind zstd writes, and the arena's ownership.
@Suite("Reading a file through the unpack arena")
struct UnpackArenaReadTests {
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
        try Self.withPayloadFile(index) { path, payload, file in
            let (read, info) = try ModelFile.withPayload(path: path) { (Array($0), $1) }
            let (decoded, decodedInfo) = try ModelFile.payloadWithInfo(file)
            #expect(read == payload)
            #expect(read == decoded)
            #expect(info == decodedInfo)
        }
    }

    /// `body(path, payload, file bytes)` with payload `index` written as a container file at `path`.
    static func withPayloadFile(_ index: Int, _ body: (String, [UInt8], [UInt8]) throws -> Void) throws {
        let (_, payload, level) = payloads[index]
        let file = try ModelFile.container(payload: payload, compressionLevel: level)
        try TestSupport.withTemporaryDirectory { directory in
            let path = directory + "/payload.mkm"
            try FileSystem.writeFileAtomically(path, bytes: file)
            try body(path, payload, file)
        }
    }

    @Test("a file's payload read through the arena's frame space equals the one read through a buffer of its own",
          arguments: 0..<payloads.count)
    func frameInArena(index: Int) throws {
        try Self.withPayloadFile(index) { path, payload, file in
            let (read, info, capacity) = try ModelFile.withPayloadInArena(path: path, limits: .default) { bytes, info, arena in
                (Array(bytes), info, arena.capacity)
            }
            #expect(info.payloadBytes == payload.count)
            #expect(info.fileBytes == file.count)
            #expect(read == payload)
            #expect(capacity >= file.count - ContainerHeader.size)
        }
    }

    @Test("the message tree of a file lies in the block that held its frame, and equals the byte path's")
    func treeInArena() throws {
        let model = SampleModels.tinyCNN()
        let bytes = try ModelFile.encode(model)
        try TestSupport.withTemporaryDirectory { directory in
            let path = directory + "/tiny.mkm"
            try FileSystem.writeFileAtomically(path, bytes: bytes)
            let (inArena, used, capacity) = try ModelFile.withPayloadInArena(path: path, limits: .default) { payload, _, arena in
                let unpacked = try UnpackedModelFile(payload, arena: arena)
                return (unpacked.arena.contains(unpacked.file), unpacked.arena.used, arena.capacity)
            }
            #expect(inArena)
            #expect(used > 0 && used <= capacity)
            #expect(try ModelFile.read(path: path) == model)
        }
    }

    /// Many small nodes: protobuf-c's structs outgrow the wire bytes, so the block's estimate is
    /// exceeded and the rest of the tree comes from malloc (freed through the arena's allocator;
    /// the sanitizer run checks nothing leaks or is freed twice).
    @Test("a tree larger than the block's estimate spills to malloc and still reads back")
    func treeBeyondEstimate() throws {
        var model = SampleModels.small()
        var last = model.graph.outputs[0]
        for index in 0..<2_000 {
            let output = "r\(index)"
            model.graph.nodes.append(Node(name: "relu\(index)", operation: .relu, inputs: [last], outputs: [output]))
            last = output
        }
        model.graph.outputs = [last]
        let bytes = try ModelFile.encode(model)
        let unpacked = try UnpackedModelFile(try ModelFile.payloadWithInfo(bytes).0)
        #expect(unpacked.arena.spills > 0)
        #expect(unpacked.arena.used <= unpacked.arena.capacity)
        _ = consume unpacked
        try TestSupport.withTemporaryDirectory { directory in
            let path = directory + "/long.mkm"
            try FileSystem.writeFileAtomically(path, bytes: bytes)
            #expect(try ModelFile.read(path: path) == model)
            #expect(try ModelFile.decode(bytes) == model)
        }
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
