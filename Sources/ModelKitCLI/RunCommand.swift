import ArgumentParser
import Foundation
import ModelKitCore
import ModelKitData
import ModelKitRuntime

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a model on an image, an array or IDX images and print the top classes.",
        discussion: """
            INPUT is a .npy array (uint8 = raw pixels, normalised with the model's stored \
            normalisation; float = fed as is), an 8-bit grayscale or RGB PNG, or an IDX images \
            file (gzipped or raw). IDX labels beside the images file are shown as 'truth'.
            """)

    @Argument(help: "A .mkm model or .mkc checkpoint.")
    var model: String

    @Option(name: .shortAndLong, help: "Input file: .npy, .png, or IDX images.")
    var input: String

    @Option(help: "Sample to run from a multi-sample input.")
    var index: Int?

    @Option(help: "Samples START:END (half-open) to run from a multi-sample input.")
    var range: String?

    @Option(name: .customLong("top-k"), help: "Classes to show per sample.")
    var topK = 3

    @Option(help: "Save the raw outputs to this .npy file.")
    var output: String?

    @Option(help: "Worker threads.")
    var threads = 1

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Option(name: .customLong("require-signature"),
            help: ArgumentHelp("Refuse the model unless MODEL.sig is a valid signature by this public key.", valueName: "PUB"))
    var requireSignature: String?

    func validate() throws {
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if index != nil && range != nil { throw ValidationError("give --index or --range, not both") }
        if let index, index < 0 { throw ValidationError("--index must be >= 0") }
    }

    func run() throws {
        try reportingFailures {
            ProcessMemory.retainFreedBlocks()
            let loaded = try LoadedModel(path: model, requireSignature: requireSignature)
            let selection: Range<Int>? = try index.map { $0..<($0 + 1) } ?? range.map(parseRange)
            let batch = try ModelInput.load(path: input, selection: selection, model: loaded.model)
            let session = try Session(model: loaded.model, options: SessionOptions(threads: threads))
            let started = DispatchTime.now()
            let result = try session.run(batch.tensor.fitted(to: session.inputs[0]))
            let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6
            if let output {
                try NpyArray(shape: result.shape, values: result.realValues).write(to: output)
            }
            let predictions = Predictions(output: result, labels: loaded.model.metadata.labels, topK: topK)
            if json {
                print(try jsonText(predictions.jsonObject(names: batch.sampleNames, truth: batch.labels,
                                                          milliseconds: milliseconds)))
            } else {
                print(predictions.text(names: batch.sampleNames, truth: batch.labels))
                print("\(batch.sampleNames.count) sample\(batch.sampleNames.count == 1 ? "" : "s") in \(formatted(milliseconds, decimals: 3)) ms")
            }
        }
    }
}

/// The top classes of each row of a [batch, classes] output.
struct Predictions {
    struct Entry {
        var classIndex: Int
        var score: Float
    }

    var rows: [[Entry]]
    var labels: [String]

    init(output: Tensor, labels: [String], topK: Int) {
        let values = output.realValues
        let batch = output.shape.rank > 0 ? output.shape[0] : 1
        let classes = batch > 0 ? values.count / batch : 0
        rows = (0..<batch).map { row in
            let scores = values[(row * classes)..<((row + 1) * classes)]
            return scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
                .prefix(topK).map { Entry(classIndex: $0 - row * classes, score: scores[$0]) }
        }
        self.labels = labels
    }

    func label(_ index: Int) -> String {
        index < labels.count ? labels[index] : "class \(index)"
    }

    func text(names: [String], truth: [Int]?) -> String {
        var lines: [String] = []
        for (row, entries) in rows.enumerated() {
            let shown = entries.map { "\(label($0.classIndex)) \(formatted(Double($0.score), decimals: 4))" }
                .joined(separator: ", ")
            var line = "\(names[row]): \(shown)"
            if let truth {
                let correct = entries.first?.classIndex == truth[row]
                line += "  [truth: \(label(truth[row]))\(correct ? "" : ", wrong")]"
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    func jsonObject(names: [String], truth: [Int]?, milliseconds: Double) -> [String: Any] {
        [
            "milliseconds": milliseconds,
            "samples": rows.enumerated().map { row, entries -> [String: Any] in
                var sample: [String: Any] = [
                    "name": names[row],
                    "top": entries.map { ["class": $0.classIndex, "label": label($0.classIndex), "score": Double($0.score)] },
                ]
                if let truth { sample["truth"] = truth[row] }
                return sample
            },
        ]
    }
}
