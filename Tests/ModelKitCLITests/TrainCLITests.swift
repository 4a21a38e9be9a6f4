import Foundation
import ModelKitCore
import ModelKitData
import ModelKitFormat
import Testing

/// A small IDX dataset whose class is the brightest quadrant of a 12×12 image.
func writeQuadrantDataset(directory: String, trainCount: Int = 240, testCount: Int = 80) throws {
    var state: UInt64 = 12345
    func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 33
    }
    func write(_ prefix: String, count: Int) throws {
        var pixels: [UInt8] = []
        var labels: [UInt8] = []
        for _ in 0..<count {
            let label = Int(next() % 4)
            for y in 0..<12 {
                for x in 0..<12 {
                    let bright = (y / 6) * 2 + (x / 6) == label
                    pixels.append(UInt8((bright ? 180 : 60) + Int(next() % 50)))
                }
            }
            labels.append(UInt8(label))
        }
        try IDXFile(dataType: .uint8, shape: [count, 12, 12], data: pixels).write(to: "\(directory)/\(prefix)-images-idx3-ubyte.gz", gzip: true)
        try IDXFile(dataType: .uint8, shape: [count], data: labels).write(to: "\(directory)/\(prefix)-labels-idx1-ubyte.gz", gzip: true)
    }
    try write("train", count: trainCount)
    try write("t10k", count: testCount)
}

@Suite("modelkit train, run as a user would")
struct TrainCLITests {
    @Test func trainsResumesExportsAndEvaluates() throws {
        let directory = try temporaryDirectory()
        try writeQuadrantDataset(directory: directory)
        let spec = directory + "/spec.json"
        try Data(#"{"input": [12, 12, 1], "layers": [{"type": "conv2d", "filters": 4, "kernel": 3, "activation": "relu"}, {"type": "maxpool2d", "pool": 2}, {"type": "flatten"}, {"type": "dropout", "rate": 0.1}, {"type": "dense", "units": 4}]}"#.utf8)
            .write(to: URL(fileURLWithPath: spec))
        let checkpoints = directory + "/ckpt"
        let common = ["--data", directory, "--spec", spec, "--labels", "tl,tr,bl,br", "--batch-size", "16",
                      "--learning-rate", "0.01", "--checkpoint-dir", checkpoints, "--threads", "1"]
        let first = try modelkit(arguments: ["train"] + common + ["--epochs", "1", "-o", directory + "/one.mkc",
                                                                     "--metrics-json", directory + "/metrics.json"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("epoch 1/1:"))
        #expect(first.stdout.contains("test accuracy:"))
        let metrics = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/metrics.json"))) as? [String: Any])
        #expect((metrics["epochs"] as? [Any])?.count == 1)
        #expect(metrics["test_accuracy"] is Double)

        // A 3-epoch run checkpointing every 7 steps (15 per epoch); resuming from its step-21
        // checkpoint, in the middle of epoch 2, must end with exactly the same weights.
        let three = try modelkit(arguments: ["train"] + common + ["--epochs", "3", "--checkpoint-every", "7", "--keep", "100", "-o", directory + "/three.mkc"])
        #expect(three.status == 0, "\(three.stderr)")
        let resumed = try modelkit(arguments: ["train", "--data", directory, "--resume", checkpoints + "/checkpoint-e001-s0000021.mkc",
                                               "--checkpoint-dir", directory + "/ckpt2", "-o", directory + "/resumed.mkc", "--threads", "1"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("resumed from"))
        let a = try ModelFile.read(path: directory + "/three.mkc")
        let b = try ModelFile.read(path: directory + "/resumed.mkc")
        #expect(a.graph.initializers == b.graph.initializers, "a resumed run must end with the same weights")

        let exported = try modelkit("export", directory + "/three.mkc", "-o", directory + "/model.mkm")
        #expect(exported.status == 0, "\(exported.stderr)")
        let eval = try modelkit("eval", directory + "/model.mkm", "--data", directory, "--json")
        #expect(eval.status == 0, "\(eval.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        #expect((object["accuracy"] as? Double ?? 0) > 0.8)
        #expect(object["labels"] as? [String] == ["tl", "tr", "bl", "br"])
    }

    /// What a kill in the middle of a checkpoint write, or a later bit rot, leaves in a run
    /// directory must not stop `--resume DIR`: stale temporary files go, a damaged newest
    /// checkpoint is skipped for the one before it.
    @Test func resumeFromDirectorySkipsDamageAndCleansTemporaries() throws {
        let directory = try temporaryDirectory()
        try writeQuadrantDataset(directory: directory, trainCount: 96, testCount: 16)
        let checkpoints = directory + "/ckpt"
        let common = ["--data", directory, "--model", "mlp", "--batch-size", "16", "--threads", "1"]
        let first = try modelkit(arguments: ["train"] + common + ["--epochs", "2", "--checkpoint-dir", checkpoints,
                                                                     "--keep", "5", "-o", directory + "/two.mkc"])
        #expect(first.status == 0, "\(first.stderr)")
        let saved = CheckpointDirectoryListing(checkpoints)
        #expect(saved.checkpoints == ["checkpoint-e001-s0000006.mkc", "checkpoint-e002-s0000012.mkc"])

        // Damage the newest checkpoint and leave temporaries as a killed write would.
        var newest = try Array(Data(contentsOf: URL(fileURLWithPath: checkpoints + "/checkpoint-e002-s0000012.mkc")))
        newest[newest.count / 2] ^= 0x40
        try Data(newest).write(to: URL(fileURLWithPath: checkpoints + "/checkpoint-e002-s0000012.mkc"))
        for stale in [".checkpoint-e003-s0000018.mkc.tmp-Ab12Cd", ".best.mkc.tmp-xY34zW"] {
            try Data([1, 2, 3]).write(to: URL(fileURLWithPath: checkpoints + "/" + stale))
        }
        try Data([9]).write(to: URL(fileURLWithPath: checkpoints + "/.notes.tmp-keepme"))

        let resumed = try modelkit(arguments: ["train"] + common + ["--epochs", "3", "--resume", checkpoints,
                                                                       "--checkpoint-dir", checkpoints, "-o", directory + "/three.mkc"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("skipping \(checkpoints)/checkpoint-e002-s0000012.mkc"), "\(resumed.stderr)")
        #expect(resumed.stdout.contains("resumed from \(checkpoints)/checkpoint-e001-s0000006.mkc"), "\(resumed.stdout)")
        #expect(resumed.stderr.contains("left by an interrupted checkpoint write"))
        let after = CheckpointDirectoryListing(checkpoints)
        #expect(after.hidden == [".notes.tmp-keepme"], "only the run's own temporaries are removed")
    }

    @Test func badInputIsAClearError() throws {
        let directory = try temporaryDirectory()
        try writeQuadrantDataset(directory: directory, trainCount: 20, testCount: 10)
        let quick = ["--epochs", "1", "--checkpoint-dir", directory + "/c", "-o", directory + "/o.mkc", "--model", "mlp"]

        let missing = try modelkit(arguments: ["train", "--data", directory + "/nowhere"] + quick)
        #expect(missing.status == 66)
        #expect(missing.stderr.contains("missing"))

        // Image and label counts that disagree.
        try IDXFile(dataType: .uint8, shape: [19], data: [UInt8](repeating: 0, count: 19))
            .write(to: directory + "/short-labels.gz", gzip: true)
        let mismatch = try modelkit(arguments: ["train", "--data", directory, "--train-images", directory + "/train-images-idx3-ubyte.gz",
                                                "--train-labels", directory + "/short-labels.gz"] + quick)
        #expect(mismatch.status == 65)
        #expect(mismatch.stderr.contains("20") && mismatch.stderr.contains("19"))

        // Wrong IDX magic.
        try Data([0, 0, 9, 3, 1, 2, 3]).write(to: URL(fileURLWithPath: directory + "/bad-images"))
        let magic = try modelkit(arguments: ["train", "--data", directory, "--train-images", directory + "/bad-images",
                                             "--train-labels", directory + "/train-labels-idx1-ubyte.gz"] + quick)
        #expect(magic.status == 65)

        // A label at or above the class count.
        try IDXFile(dataType: .uint8, shape: [20], data: [UInt8](repeating: 7, count: 20))
            .write(to: directory + "/big-labels.gz", gzip: true)
        let label = try modelkit(arguments: ["train", "--data", directory, "--labels", "a,b,c,d", "--train-images",
                                             directory + "/train-images-idx3-ubyte.gz", "--train-labels", directory + "/big-labels.gz"] + quick)
        #expect(label.status == 65)
        #expect(label.stderr.contains("label 7"))

        // Specs: an unknown layer, and shapes that do not fit.
        for (name, text, mention) in [
            ("unknown", #"{"input": [12, 12, 1], "layers": [{"type": "lstm"}]}"#, "lstm"),
            ("shapes", #"{"input": [12, 12, 1], "layers": [{"type": "dense", "units": 4}]}"#, "flatten"),
            ("classes", #"{"input": [12, 12, 1], "layers": [{"type": "flatten"}, {"type": "dense", "units": 3}]}"#, "classes"),
        ] {
            let path = directory + "/\(name).json"
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            let result = try modelkit(arguments: ["train", "--data", directory, "--labels", "a,b,c,d", "--spec", path] + quick)
            #expect(result.status == 65, "\(name): \(result.stderr)")
            #expect(result.stderr.contains(mention), "\(name): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
    }
}

/// The names in a checkpoint directory, split into checkpoints and hidden files.
struct CheckpointDirectoryListing {
    let checkpoints: [String]
    let hidden: [String]

    init(_ directory: String) {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        checkpoints = names.filter { $0.hasPrefix("checkpoint-") }
        hidden = names.filter { $0.hasPrefix(".") }
    }
}
