import Foundation
import Testing

@Suite("modelkit write failures")
struct WriteFailureCLITests {
    /// A model file that cannot be written is exit 73 ("cannot create"), with one clear line,
    /// not 65 ("invalid data"): the cause is the destination, not the model.
    @Test func anUnwritableFinalCheckpointIsExit73() throws {
        let directory = try temporaryDirectory()
        try writeQuadrantDataset(directory: directory, trainCount: 20, testCount: 10)
        let result = try modelkit(arguments: ["train", "--data", directory, "--model", "mlp", "--epochs", "1",
                                              "--threads", "1", "--checkpoint-dir", directory + "/c",
                                              "-o", directory + "/no-such-dir/final.mkc"])
        #expect(result.status == 73, "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("no-such-dir/final.mkc: write failed: No such file or directory"), "\(result.stderr)")
        // The epoch checkpoint written before the failure is there.
        let written = try FileManager.default.contentsOfDirectory(atPath: directory + "/c")
        #expect(written.contains { $0.hasPrefix("checkpoint-") }, "\(written)")
    }
}
