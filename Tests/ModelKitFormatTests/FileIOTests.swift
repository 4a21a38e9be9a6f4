import Foundation
import ModelKitCore
import Testing
@testable import ModelKitFormat

@Suite("Reading and writing files")
struct FileIOTests {
    @Test("write then read returns the model, with container info")
    func writeRead() throws {
        try TestSupport.withTemporaryDirectory { directory in
            let path = directory + "/model.mkm"
            try ModelFile.write(SampleModels.everyOp(), to: path)
            let (model, info) = try ModelFile.readWithInfo(path: path)
            #expect(model == SampleModels.everyOp())
            #expect(info.fileBytes == (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int))
            #expect(info.compressionRatio > 0)
            #expect(try ModelFile.info(path: path) == info)
        }
    }

    @Test("atomic write replaces an existing file and leaves no temporary file")
    func atomicReplace() throws {
        try TestSupport.withTemporaryDirectory { directory in
            let path = directory + "/run.mkc"
            try Data("old contents".utf8).write(to: URL(fileURLWithPath: path))
            try ModelFile.write(SampleModels.checkpoint(), to: path, compressionLevel: 3)
            #expect(try ModelFile.read(path: path) == SampleModels.checkpoint())
            #expect(try TestSupport.listing(directory) == ["run.mkc"])
        }
    }

    @Test("writing into a missing directory names the path")
    func missingDirectory() throws {
        try TestSupport.withTemporaryDirectory { directory throws in
            let path = directory + "/no/such/dir/model.mkm"
            let error = TestSupport.formatError { try ModelFile.write(SampleModels.small(), to: path) }
            guard case .io(.writeFailed(let failedPath, let reason)) = error else {
                Issue.record("expected io(writeFailed), got \(String(describing: error))")
                return
            }
            #expect(failedPath == path)
            #expect(reason.contains("No such file or directory"))
            #expect(error?.description.contains(path) == true)
            let remaining = try TestSupport.listing(directory)
            #expect(remaining.isEmpty)
        }
    }

    @Test("an invalid model is not written and the old file survives")
    func invalidNotWritten() throws {
        try TestSupport.withTemporaryDirectory { directory in
            let path = directory + "/model.mkm"
            try ModelFile.write(SampleModels.small(), to: path)
            var broken = SampleModels.small()
            broken.graph.outputs = ["nowhere"]
            let error = TestSupport.formatError { try ModelFile.write(broken, to: path) }
            #expect(error == .invalidGraph(.danglingOutput(name: "nowhere")))
            #expect(try ModelFile.read(path: path) == SampleModels.small())
            #expect(try TestSupport.listing(directory) == ["model.mkm"])
        }
    }

    @Test("reading a missing file is an io error naming it")
    func missingFile() {
        let error = TestSupport.formatError { try ModelFile.read(path: "/nonexistent/model.mkm") }
        #expect(error == .io(.notFound(path: "/nonexistent/model.mkm")))
    }

    @Test("the tiny-cnn fixture loads and matches its generator")
    func tinyCNNFixture() throws {
        let model = try ModelFile.read(path: TestSupport.tinyCNNPath)
        #expect(model == SampleModels.tinyCNN())
        #expect(model.graph.inputs.first?.shape == [-1, 8, 8, 1])
    }
}
