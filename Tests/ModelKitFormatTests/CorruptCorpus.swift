import Foundation
import ModelKitCore
@testable import ModelKitFormat

/// Builds Fixtures/corrupt/* and Fixtures/models/tiny-cnn.mkm deterministically. The files are
/// committed; `Tools/make-corrupt-corpus` rewrites them (MODELKIT_REGENERATE_FIXTURES=1).
enum CorruptCorpus {
    /// A valid file of `SampleModels.small()`: the base most corrupt cases damage.
    static func base() throws -> [UInt8] { try ModelFile.encode(SampleModels.small(), compressionLevel: 19) }

    static func unchecked(_ model: Model) throws -> [UInt8] {
        try ModelFile.encode(model, compressionLevel: 19, limits: .default, validate: false)
    }

    static func flipBit(_ bytes: [UInt8], at offset: Int, bit: Int = 0) -> [UInt8] {
        var copy = bytes
        copy[offset] ^= UInt8(1 << bit)
        return copy
    }

    /// File name → contents.
    static func files() throws -> [(String, [UInt8])] {
        let good = try base()
        let headerEnd = ContainerHeader.size
        var cases: [(String, [UInt8])] = []

        cases.append(("empty.mkm", []))
        cases.append(("truncated-in-header.mkm", Array(good.prefix(13))))
        cases.append(("truncated-after-header.mkm", Array(good.prefix(headerEnd))))
        cases.append(("truncated-mid-frame.mkm", Array(good.prefix(headerEnd + (good.count - headerEnd) / 2))))
        cases.append(("truncated-one-byte-short.mkm", Array(good.dropLast())))

        // What an FTP text-mode transfer does: CRLF becomes LF, shifting everything after byte 4.
        var mangled = good
        mangled.remove(at: 4)
        cases.append(("wrong-magic.mkm", mangled))

        var newer = good
        newer.replaceSubrange(8..<12, with: [2, 0, 0, 0])
        cases.append(("newer-major-version.mkm", newer))

        var flags = good
        flags[12] = 0x01
        cases.append(("unknown-flags.mkm", flags))

        // A header claiming a 1 TiB payload: must be refused before any allocation.
        var huge = good
        withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { huge.replaceSubrange(16..<24, with: $0) }
        cases.append(("declared-payload-too-large.mkm", huge))

        // Bits flipped in the first block's header, inside the compressed data.
        cases.append(("flipped-payload-bits.mkm", flipBit(flipBit(good, at: headerEnd + 6, bit: 1), at: headerEnd + 7, bit: 2)))

        // The frame is intact; only the stored 4-byte XXH64 content checksum at its end differs.
        cases.append(("checksum-mismatch.mkm", flipBit(good, at: good.count - 1, bit: 7)))

        cases.append(("trailing-bytes.mkm", good + Array("trailing garbage\n".utf8)))

        let text = Array("This is plain text, not a protobuf message: a valid zstd frame around the wrong content.\n".utf8)
        cases.append(("not-protobuf.mkm", try ModelFile.container(payload: text, compressionLevel: 19)))

        var dangling = SampleModels.small()
        dangling.graph.nodes[0].inputs[1] = "dense.weights"
        cases.append(("dangling-tensor-name.mkm", try unchecked(dangling)))

        var rng = SplitMix64(seed: 5)
        let shortWeight = Tensor(shape: [3, 4], floats: rng.floats(11))
        cases.append(("data-length-mismatch.mkm", try unchecked(SampleModels.small(weight: shortWeight))))

        cases.append(("unknown-op.mkm", try ModelFile.container(payload: unknownOpPayload(), compressionLevel: 19)))

        let cycle = SampleModels.small(nodes: [
            Node(name: "first", operation: .add(activation: .none), inputs: ["x", "second.out"], outputs: ["first.out"]),
            Node(name: "second", operation: .relu, inputs: ["first.out"], outputs: ["second.out"]),
            Node(name: "last", operation: .softmax(axis: 1), inputs: ["second.out"], outputs: ["y"]),
        ])
        cases.append(("cycle.mkm", try unchecked(cycle)))

        let wideWeight = Tensor(shape: [3, 5], floats: rng.floats(15))
        cases.append(("shape-mismatch.mkm", try unchecked(SampleModels.small(weight: wideWeight))))

        var giant = SampleModels.small()
        giant.graph.initializers["giant"] = Tensor(shape: [1 << 20, 1 << 20], floats: [])
        cases.append(("huge-tensor.mkm", try unchecked(giant)))

        return cases
    }

    /// A ModelFile whose node "mystery" sets op field 99, which no 1.0 reader knows: what an op
    /// added by a newer writer looks like to this reader.
    static func unknownOpPayload() -> [UInt8] {
        var input = ProtoWriter()
        input.string(1, "x")
        input.int(2, 1)
        input.packedInts(3, [-1, 4])
        var futureAttributes = ProtoWriter()
        futureAttributes.int(1, 3)
        var node = ProtoWriter()
        node.string(1, "mystery")
        node.string(2, "x")
        node.string(3, "y")
        node.message(99, futureAttributes)
        var graph = ProtoWriter()
        graph.message(1, input)
        graph.string(2, "y")
        graph.message(3, node)
        var metadata = ProtoWriter()
        metadata.string(1, "modelkit-from-the-future")
        metadata.string(2, "1.5.0")
        var file = ProtoWriter()
        file.int(1, 1)
        file.message(2, graph)
        file.message(3, metadata)
        return file.bytes
    }

    static var regenerate: Bool { ProcessInfo.processInfo.environment["MODELKIT_REGENERATE_FIXTURES"] == "1" }

    static func write() throws {
        let corrupt = TestSupport.path("Fixtures/corrupt")
        let models = TestSupport.path("Fixtures/models")
        for directory in [corrupt, models] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        for (name, bytes) in try files() {
            try Data(bytes).write(to: URL(fileURLWithPath: corrupt + "/" + name))
        }
        try ModelFile.write(SampleModels.tinyCNN(), to: TestSupport.tinyCNNPath, compressionLevel: 19)
    }
}
