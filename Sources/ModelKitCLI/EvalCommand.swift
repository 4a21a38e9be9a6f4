import ArgumentParser
import Foundation
import ModelKitCore
import ModelKitData
import ModelKitRuntime

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure a model's accuracy on a labelled IDX dataset, with a confusion matrix.")

    @Argument(help: "A .mkm model or .mkc checkpoint.")
    var model: String

    @Option(help: "A directory holding the standard IDX file names (Fashion-MNIST layout).")
    var data: String = IDXDataset.fashionMNISTDirectory

    @Option(help: "Which split of --data to use: test or train.")
    var split: String = "test"

    @Option(help: "An IDX images file (overrides --data; needs --labels).")
    var images: String?

    @Option(help: "The IDX labels file for --images.")
    var labels: String?

    @Option(help: "Evaluate only the first N samples.")
    var limit: Int?

    @Option(help: "Samples per inference batch.")
    var batch = 200

    @Option(help: "Worker threads.")
    var threads = 1

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Option(name: .customLong("require-signature"),
            help: ArgumentHelp("Refuse the model unless MODEL.sig is a valid signature by this public key.", valueName: "PUB"))
    var requireSignature: String?

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard IDXSplit(rawValue: split) != nil else { throw ValidationError("--split must be 'train' or 'test'") }
        if (images == nil) != (labels == nil) { throw ValidationError("--images and --labels go together") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        try reportingFailures {
            let loaded = try LoadedModel(path: model, requireSignature: requireSignature)
            let dataset: IDXDataset
            if let images, let labels {
                dataset = try IDXDataset.load(images: images, labels: labels)
            } else {
                dataset = try IDXDataset.load(directory: data, split: IDXSplit(rawValue: split)!)
            }
            let evaluation = try Evaluation.run(model: loaded.model, dataset: dataset, limit: limit, batch: batch,
                                                threads: threads)
            if json {
                print(try jsonText(evaluation.jsonObject()))
            } else {
                print(evaluation.text())
            }
        }
    }
}

/// Accuracy and confusion matrix of a model over a labelled dataset.
struct Evaluation {
    var labels: [String]
    /// confusion[truth][predicted]
    var confusion: [[Int]]
    var seconds: Double

    var total: Int { confusion.reduce(0) { $0 + $1.reduce(0, +) } }
    var correct: Int { confusion.indices.reduce(0) { $0 + confusion[$1][$1] } }
    var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }

    static func run(model: Model, dataset: IDXDataset, limit: Int?, batch: Int, threads: Int) throws -> Evaluation {
        let session = try Session(model: model, options: SessionOptions(threads: threads))
        let count = min(limit ?? dataset.count, dataset.count)
        let classes = session.outputs.first.map { $0.shape.dims.last ?? 0 } ?? 0
        guard classes >= 1 else { throw CommandFailure.data("model output has no class axis") }
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        let started = DispatchTime.now()
        var start = 0
        while start < count {
            let end = min(start + batch, count)
            let images = (start..<end).map { Array(dataset.image($0)) }
            let input = try ModelInput.fromPixels(images, height: dataset.rows, width: dataset.columns, channels: 1,
                                                  names: [], model: model, source: "dataset")
            let output = try session.run(input.tensor.fitted(to: session.inputs[0]))
            let scores = output.realValues
            for row in 0..<(end - start) {
                let slice = scores[(row * classes)..<((row + 1) * classes)]
                let predicted = slice.indices.max { slice[$0] < slice[$1] }! - row * classes
                let truth = dataset.label(start + row)
                guard truth < classes else {
                    throw CommandFailure.data("label \(truth) of sample \(start + row) is not below the model's \(classes) classes")
                }
                confusion[truth][predicted] += 1
            }
            start = end
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        let names = (0..<classes).map { $0 < model.metadata.labels.count ? model.metadata.labels[$0] : "class \($0)" }
        return Evaluation(labels: names, confusion: confusion, seconds: seconds)
    }

    func text() -> String {
        var lines = ["accuracy: \(formatted(accuracy, decimals: 4)) (\(correct)/\(total)) in \(formatted(seconds, decimals: 2)) s", ""]
        var table = TextTable([("truth \\ predicted", .left)] + labels.indices.map { ("\($0)", .right) } + [("recall", .right)])
        for (truth, row) in confusion.enumerated() {
            let count = row.reduce(0, +)
            let recall = count == 0 ? 0 : Double(row[truth]) / Double(count)
            table.add(["\(truth) \(labels[truth])"] + row.map(String.init) + [formatted(recall, decimals: 3)])
        }
        lines.append(table.render())
        return lines.joined(separator: "\n")
    }

    func jsonObject() -> [String: Any] {
        ["accuracy": accuracy, "correct": correct, "total": total, "labels": labels, "confusion": confusion,
         "seconds": seconds]
    }
}
