import Foundation
import ModelKitCore
import ModelKitData
import ModelKitFormat
import Testing

private let mlp = fixture("models/fashion-mlp.mkm")

@Suite("modelkit CLI, run as a user would")
struct CLITests {
    @Test func inspectShowsMetadataNodesAndTotals() throws {
        let result = try modelkit("inspect", mlp)
        #expect(result.status == 0, "\(result.stderr)")
        for expected in ["kind:          model (format 1.0)", "Ankle boot", "Dense+relu", "[1x784] [128x784] [128]",
                         "parameters:    101,770", "compression:", "arena:"] {
            #expect(result.stdout.contains(expected), "missing '\(expected)' in:\n\(result.stdout)")
        }
    }

    @Test func inspectJSONMatchesTheFile() throws {
        let result = try modelkit("inspect", mlp, "--json")
        #expect(result.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let totals = try #require(object["totals"] as? [String: Any])
        #expect(totals["parameters"] as? Int == 101_770)
        let size = try FileManager.default.attributesOfItem(atPath: mlp)[.size] as? Int
        #expect(totals["file_bytes"] as? Int == size)
        #expect((object["nodes"] as? [Any])?.count == 4)
        #expect((object["labels"] as? [String])?.first == "T-shirt/top")
    }

    @Test func inspectShowsACheckpointsTrainingState() throws {
        let directory = try temporaryDirectory()
        var model = try ModelFile.read(path: fixture("models/tiny-cnn.mkm"))
        model.kind = .checkpoint
        model.training = TrainingState(epoch: 2, step: 40, optimizer: OptimizerState(name: "adam"),
                                       metricsHistory: [EpochMetrics(epoch: 1, trainLoss: 0.5, trainAccuracy: 0.8),
                                                        EpochMetrics(epoch: 2, trainLoss: 0.4, trainAccuracy: 0.85)])
        let path = directory + "/tiny.mkc"
        try ModelFile.write(model, to: path)
        let result = try modelkit("inspect", path)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("checkpoint"))
        #expect(result.stdout.contains("epoch 2, step 40, optimizer adam"))
    }

    @Test func runClassifiesIDXImagesWithLabelsAndTruth() throws {
        let result = try modelkit("run", mlp, "--input", fashionTestImages, "--range", "0:3", "--top-k", "2")
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        // The first three Fashion-MNIST test images are an ankle boot, a pullover and trousers.
        #expect(lines[0].hasPrefix("#0: Ankle boot"))
        #expect(lines[1].hasPrefix("#1: Pullover"))
        #expect(lines[2].hasPrefix("#2: Trouser"))
        #expect(lines[0].contains("[truth: Ankle boot]"))
    }

    @Test func runJSONAndOutputFile() throws {
        let directory = try temporaryDirectory()
        let output = directory + "/scores.npy"
        let result = try modelkit("run", mlp, "--input", fashionTestImages, "--index", "1", "--json", "--output", output)
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let samples = try #require(object["samples"] as? [[String: Any]])
        let top = try #require(samples.first?["top"] as? [[String: Any]])
        #expect(top.first?["label"] as? String == "Pullover")
        #expect(samples.first?["truth"] as? Int == 2)
        let saved = try NpyArray.read(output)
        #expect(saved.shape == [1, 10])
        #expect(abs(saved.values.reduce(0, +) - 1) < 1e-4)
        #expect(saved.values.firstIndex(of: saved.values.max()!) == 2)
    }

    @Test func pngAndNpyInputsAgreeWithIDX() throws {
        let directory = try temporaryDirectory()
        let dataset = try IDXDataset.load(directory: fashionMNIST, split: .test)
        let pixels = Array(dataset.image(4))
        let png = directory + "/sample.png"
        try PNG.write(Image(width: 28, height: 28, channels: 1, pixels: pixels), to: png)
        let rawNpy = directory + "/sample-u8.npy"
        try NpyArray(shape: [28, 28], values: pixels.map(Float.init), dtype: .uint8).write(to: rawNpy)
        let floatNpy = directory + "/sample-f32.npy"
        try NpyArray(shape: [1, 28, 28, 1], values: pixels.map { Float($0) / 255 }).write(to: floatNpy)

        func scores(_ input: String, _ extra: String...) throws -> [Float] {
            let out = directory + "/out-\(UUID().uuidString).npy"
            let result = try modelkit(arguments: ["run", mlp, "--input", input, "--output", out] + extra)
            #expect(result.status == 0, "\(result.stderr)")
            return try NpyArray.read(out).values
        }
        let fromIDX = try scores(fashionTestImages, "--index", "4")
        for other in [try scores(png), try scores(rawNpy), try scores(floatNpy)] {
            #expect(zip(fromIDX, other).allSatisfy { abs($0 - $1) < 1e-6 })
        }
    }

    @Test func evalReportsAccuracyAndConfusion() throws {
        let result = try modelkit("eval", mlp, "--data", fashionMNIST, "--limit", "1000", "--json")
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["total"] as? Int == 1000)
        let accuracy = try #require(object["accuracy"] as? Double)
        #expect(accuracy > 0.8)
        let confusion = try #require(object["confusion"] as? [[Int]])
        #expect(confusion.count == 10 && confusion.allSatisfy { $0.count == 10 })
        #expect(confusion.flatMap { $0 }.reduce(0, +) == 1000)
    }
}

@Suite("modelkit CLI errors")
struct CLIErrorTests {
    /// Every corrupt fixture is refused with exit 65 and one line naming the file and the problem.
    @Test(arguments: try! FileManager.default.contentsOfDirectory(atPath: fixture("corrupt")).filter { $0.hasSuffix(".mkm") }.sorted())
    func corruptModelIsRejected(name: String) throws {
        let path = fixture("corrupt/" + name)
        for command in ["inspect", "run"] {
            let result = command == "inspect"
                ? try modelkit("inspect", path)
                : try modelkit("run", path, "--input", fashionTestImages)
            #expect(result.status == 65, "\(command) \(name): status \(result.status)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(command) \(name): \(result.stderr)")
            #expect(result.stderr.hasPrefix("modelkit: error: \(path): "))
            #expect(result.stdout.isEmpty)
        }
    }

    @Test func missingFilesExitWith66() throws {
        let missingModel = try modelkit("inspect", "/nonexistent/model.mkm")
        #expect(missingModel.status == 66)
        #expect(missingModel.stderr.contains("/nonexistent/model.mkm"))
        let missingInput = try modelkit("run", mlp, "--input", "/nonexistent/x.png")
        #expect(missingInput.status == 66)
        let missingData = try modelkit("eval", mlp, "--data", "/nonexistent")
        #expect(missingData.status == 66)
        #expect(missingData.stderr.contains("dataset-fashion-mnist"))
    }

    @Test func pngOfTheWrongShapeIsAClearError() throws {
        let directory = try temporaryDirectory()
        let png = directory + "/rgb.png"
        try PNG.write(Image(width: 8, height: 8, channels: 3, pixels: [UInt8](repeating: 128, count: 192)), to: png)
        let result = try modelkit("run", mlp, "--input", png)
        #expect(result.status == 65)
        #expect(result.stderr.contains("8x8x3"))
        #expect(result.stderr.contains("28x28x1"))
    }

    @Test func corruptInputDataIsAClearError() throws {
        let directory = try temporaryDirectory()
        let png = directory + "/broken.png"
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0]).write(to: URL(fileURLWithPath: png))
        let result = try modelkit("run", mlp, "--input", png)
        #expect(result.status == 65)
        #expect(result.stderr.hasPrefix("modelkit: error: "))
    }

    @Test func outOfRangeSelectionAndBadOptionsAreUsageErrors() throws {
        let range = try modelkit("run", mlp, "--input", fashionTestImages, "--range", "9990:10001")
        #expect(range.status == 64)
        #expect(range.stderr.contains("10000 samples"))
        let both = try modelkit("run", mlp, "--input", fashionTestImages, "--range", "0:2", "--index", "3")
        #expect(both.status == 64)
        let unknown = try modelkit("frobnicate")
        #expect(unknown.status == 64)
    }
}
