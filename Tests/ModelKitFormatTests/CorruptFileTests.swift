import Foundation
import ModelKitCore
import Testing
@testable import ModelKitFormat

/// One test per file in Fixtures/corrupt: each asserts the specific error and that its message
/// names the problem. Reads go through `ModelFile.read(path:)`, as the CLI's would.
@Suite("Corrupt-file corpus")
struct CorruptFileTests {
    func error(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) -> FormatError? {
        TestSupport.formatError(sourceLocation: sourceLocation) { try ModelFile.read(path: TestSupport.corruptFixture(name)) }
    }

    @Test("fixtures are current (MODELKIT_REGENERATE_FIXTURES=1 rewrites them)")
    func corpusIsComplete() throws {
        if CorruptCorpus.regenerate { try CorruptCorpus.write() }
        let expected = try CorruptCorpus.files().map(\.0).sorted()
        let present = try TestSupport.listing(TestSupport.path("Fixtures/corrupt"))
        #expect(present == expected)
        for name in present {
            let size = try FileManager.default.attributesOfItem(atPath: TestSupport.corruptFixture(name))[.size] as? Int
            #expect((size ?? .max) < 8192, "\(name) should stay a small fixture")
        }
        #expect(FileManager.default.fileExists(atPath: TestSupport.tinyCNNPath))
    }

    @Test func emptyFile() {
        let e = error("empty.mkm")
        #expect(e == .emptyFile)
        #expect(e?.description.contains("empty") == true)
    }

    @Test func truncatedInHeader() {
        let e = error("truncated-in-header.mkm")
        #expect(e == .truncatedHeader(size: 13))
        #expect(e?.description.contains("13 bytes, shorter than the 24-byte modelkit header") == true)
    }

    @Test func truncatedAfterHeader() {
        let e = error("truncated-after-header.mkm")
        #expect(e == .truncatedFrame(reason: "the file ends right after the header"))
        #expect(e?.description.contains("truncated") == true)
    }

    @Test func truncatedMidFrame() {
        let e = error("truncated-mid-frame.mkm")
        guard case .truncatedFrame(let reason) = e else {
            Issue.record("expected truncatedFrame, got \(String(describing: e))")
            return
        }
        #expect(reason.contains("ends inside the frame"))
        #expect(e?.description.contains("zstd frame at byte 24 is truncated") == true)
    }

    @Test func truncatedOneByteShort() {
        let e = error("truncated-one-byte-short.mkm")
        guard case .truncatedFrame = e else {
            Issue.record("expected truncatedFrame, got \(String(describing: e))")
            return
        }
        #expect(e?.description.contains("truncated") == true)
    }

    @Test func wrongMagic() {
        let e = error("wrong-magic.mkm")
        guard case .badMagic(let found) = e else {
            Issue.record("expected badMagic, got \(String(describing: e))")
            return
        }
        #expect(found == [0x89, 0x4D, 0x4B, 0x4D, 0x0A, 0x1A, 0x0A, 0x01])
        #expect(e?.description.contains("not the modelkit magic") == true)
        #expect(e?.description.contains("text-mode") == true)
    }

    @Test func newerMajorVersion() {
        let e = error("newer-major-version.mkm")
        #expect(e == .unsupportedVersion(found: FormatVersion(major: 2, minor: 0), supported: FormatVersion(major: 1, minor: 1)))
        #expect(e?.description == "file is format 2.0, this reader supports up to 1.x; upgrade modelkit")
    }

    @Test func unknownFlags() {
        let e = error("unknown-flags.mkm")
        #expect(e == .unknownFlags(1))
        #expect(e?.description.contains("flags (bytes 12-15) are 0x1") == true)
    }

    @Test func declaredPayloadTooLarge() {
        let e = error("declared-payload-too-large.mkm")
        #expect(e == .payloadTooLarge(declared: 1 << 40, limit: Limits.default.maxPayloadBytes))
        #expect(e?.description.contains("1099511627776 bytes, more than the limit") == true)
    }

    @Test func flippedPayloadBits() {
        let e = error("flipped-payload-bits.mkm")
        guard case .corruptFrame(let reason) = e else {
            Issue.record("expected corruptFrame, got \(String(describing: e))")
            return
        }
        #expect(!reason.isEmpty)
        #expect(e?.description.contains("zstd frame at byte 24 is corrupt") == true)
    }

    @Test func checksumMismatch() {
        let e = error("checksum-mismatch.mkm")
        #expect(e == .checksumMismatch)
        #expect(e?.description.contains("checksum") == true)
    }

    @Test func trailingBytes() throws {
        let e = error("trailing-bytes.mkm")
        let size = try CorruptCorpus.base().count
        #expect(e == .trailingBytes(offset: size, count: 17))
        #expect(e?.description.contains("17 unexpected bytes after the zstd frame, at byte \(size)") == true)
    }

    @Test func notProtobuf() {
        let e = error("not-protobuf.mkm")
        guard case .invalidProtobuf = e else {
            Issue.record("expected invalidProtobuf, got \(String(describing: e))")
            return
        }
        #expect(e?.description.hasPrefix("payload is not a valid modelkit protobuf message") == true)
    }

    @Test func danglingTensorName() {
        let e = error("dangling-tensor-name.mkm")
        #expect(e == .invalidGraph(.danglingInput(node: "dense", input: "dense.weights")))
        #expect(e?.description.contains("node 'dense' reads 'dense.weights'") == true)
    }

    @Test func dataLengthMismatch() {
        let e = error("data-length-mismatch.mkm")
        #expect(e == .dataLengthMismatch(tensor: "initializer 'dense.weight'", expected: 48, actual: 44))
        #expect(e?.description == "initializer 'dense.weight' has 44 bytes of data, but its shape and dtype need 48")
    }

    @Test func unknownOp() {
        let e = error("unknown-op.mkm")
        #expect(e == .unknownOp(node: "mystery"))
        #expect(e?.description.contains("node 'mystery' has an op this reader does not know") == true)
    }

    @Test func cycle() {
        let e = error("cycle.mkm")
        #expect(e == .invalidGraph(.cycle(nodes: ["first", "second", "last"])))
        #expect(e?.description.contains("cycle through nodes 'first', 'second'") == true)
    }

    @Test func shapeMismatch() {
        let e = error("shape-mismatch.mkm")
        guard case .invalidGraph(.shapeMismatch(let node, let op, _)) = e else {
            Issue.record("expected invalidGraph(shapeMismatch), got \(String(describing: e))")
            return
        }
        #expect(node == "dense")
        #expect(op == "Dense")
        #expect(e?.description.contains("node 'dense' (Dense): input shapes do not fit") == true)
    }

    @Test func hugeTensor() {
        let e = error("huge-tensor.mkm")
        #expect(e == .tensorTooLarge(tensor: "initializer 'giant'", dims: [1 << 20, 1 << 20], limit: Limits.default.maxTensorElements))
        #expect(e?.description == "initializer 'giant' declares shape [1048576x1048576], more than the limit of 536870912 elements")
    }
}
