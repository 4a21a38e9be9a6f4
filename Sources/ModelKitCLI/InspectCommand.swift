import ArgumentParser
import Foundation
import ModelKitCore
import ModelKitFormat
import ModelKitRuntime

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what a model or checkpoint holds: metadata, nodes, shapes, parameters and sizes.")

    @Argument(help: "A .mkm model or .mkc checkpoint.")
    var file: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        try reportingFailures {
            let loaded = try LoadedModel(path: file)
            let report = try InspectReport(loaded)
            if json {
                print(try jsonText(report.jsonObject()))
            } else {
                print(report.text())
            }
        }
    }
}

/// Everything `inspect` shows, computed once and rendered as text or JSON.
struct InspectReport {
    struct NodeRow {
        var name: String
        var op: String
        var activation: String?
        var inputShapes: [Shape]
        var outputShape: Shape
        var parameters: Int
        var dtype: DType
    }

    let loaded: LoadedModel
    let rows: [NodeRow]
    let outputs: [ValueInfo]
    let arenaBytes: Int?

    init(_ loaded: LoadedModel) throws {
        self.loaded = loaded
        let graph = loaded.model.graph
        let analysis = try graph.analyze()
        rows = analysis.order.map { index in
            let node = graph.nodes[index]
            let parameters = node.inputs.reduce(0) { $0 + (graph.initializers[$1]?.elementCount ?? 0) }
            let output = analysis.values[node.outputs[0]]!
            let activation = node.operation.fusedActivation.flatMap { $0 == .none ? nil : $0.description }
            return NodeRow(name: node.name, op: node.operation.name, activation: activation,
                           inputShapes: node.inputs.compactMap { analysis.values[$0]?.shape },
                           outputShape: output.shape, parameters: parameters, dtype: output.dtype)
        }
        outputs = graph.outputs.map { analysis.values[$0]! }
        arenaBytes = try? Session(model: loaded.model).arenaBytes
    }

    var model: Model { loaded.model }

    func text() -> String {
        var lines: [String] = []
        let meta = model.metadata
        lines.append("\(loaded.path)")
        lines.append("  kind:          \(model.kind.rawValue) (format \(loaded.info.version.description))")
        lines.append("  producer:      \(meta.producerName) \(meta.producerVersion)")
        if meta.createdAt > 0 { lines.append("  created:       \(iso8601(meta.createdAt))") }
        if !meta.description.isEmpty { lines.append("  description:   \(meta.description)") }
        if !meta.labels.isEmpty { lines.append("  labels:        \(meta.labels.joined(separator: ", "))") }
        if let n = meta.normalization {
            lines.append("  normalization: x * \(n.pixelScale), mean \(n.mean), std \(n.std)")
        }
        for (key, value) in meta.properties.sorted(by: { $0.key < $1.key }) {
            lines.append("  \(key): \(value)")
        }
        for input in model.graph.inputs {
            lines.append("  input:         \(input.name) \(input.dtype) \(input.shape)")
        }
        for output in outputs {
            lines.append("  output:        \(output.name) \(output.dtype) \(output.shape)")
        }
        if let training = model.training {
            lines.append("  training:      epoch \(training.epoch), step \(training.step), optimizer \(training.optimizer.name)")
            for metrics in training.metricsHistory {
                var line = "    epoch \(metrics.epoch): loss \(formatted(metrics.trainLoss, decimals: 4)), accuracy \(formatted(metrics.trainAccuracy, decimals: 4))"
                if let accuracy = metrics.validationAccuracy { line += ", validation accuracy \(formatted(accuracy, decimals: 4))" }
                lines.append(line)
            }
        }
        lines.append("")
        var table = TextTable([("#", .right), ("node", .left), ("op", .left), ("inputs", .left), ("output", .left),
                               ("params", .right), ("dtype", .left)])
        for (index, row) in rows.enumerated() {
            let op = row.activation.map { "\(row.op)+\($0)" } ?? row.op
            table.add(["\(index)", row.name, op, row.inputShapes.map(\.description).joined(separator: " "),
                       row.outputShape.description, row.parameters > 0 ? grouped(row.parameters) : "", row.dtype.rawValue])
        }
        lines.append(table.render())
        lines.append("")
        lines.append("  nodes:         \(rows.count)")
        lines.append("  parameters:    \(grouped(model.graph.parameterCount))")
        lines.append("  file size:     \(grouped(loaded.info.fileBytes)) bytes (\(humanBytes(loaded.info.fileBytes)))")
        lines.append("  uncompressed:  \(grouped(loaded.info.payloadBytes)) bytes (\(humanBytes(loaded.info.payloadBytes)))")
        lines.append("  compression:   \(formatted(loaded.info.compressionRatio, decimals: 2))x")
        if let arena = arenaBytes {
            lines.append("  arena:         \(grouped(arena)) bytes at batch 1")
        }
        return lines.joined(separator: "\n")
    }

    func jsonObject() -> [String: Any] {
        let meta = model.metadata
        var object: [String: Any] = [
            "path": loaded.path,
            "kind": model.kind.rawValue,
            "format_version": loaded.info.version.description,
            "producer": ["name": meta.producerName, "version": meta.producerVersion],
            "created_at": meta.createdAt,
            "description": meta.description,
            "labels": meta.labels,
            "properties": meta.properties,
            "inputs": model.graph.inputs.map { ["name": $0.name, "dtype": $0.dtype.rawValue, "shape": $0.shape.dims] },
            "outputs": outputs.map { ["name": $0.name, "dtype": $0.dtype.rawValue, "shape": $0.shape.dims] },
            "nodes": rows.map { row -> [String: Any] in
                var node: [String: Any] = [
                    "name": row.name, "op": row.op, "input_shapes": row.inputShapes.map(\.dims),
                    "output_shape": row.outputShape.dims, "parameters": row.parameters, "dtype": row.dtype.rawValue,
                ]
                if let activation = row.activation { node["activation"] = activation }
                return node
            },
            "totals": [
                "nodes": rows.count,
                "parameters": model.graph.parameterCount,
                "file_bytes": loaded.info.fileBytes,
                "uncompressed_bytes": loaded.info.payloadBytes,
                "compression_ratio": loaded.info.compressionRatio,
                "arena_bytes": arenaBytes.map { $0 as Any } ?? NSNull(),
            ],
        ]
        if let n = meta.normalization {
            object["normalization"] = ["pixel_scale": n.pixelScale, "mean": n.mean, "std": n.std]
        }
        if let training = model.training {
            object["training"] = [
                "epoch": training.epoch, "step": training.step, "optimizer": training.optimizer.name,
                "metrics": training.metricsHistory.map { m -> [String: Any] in
                    var entry: [String: Any] = ["epoch": m.epoch, "train_loss": m.trainLoss,
                                                "train_accuracy": m.trainAccuracy, "seconds": m.seconds]
                    if let v = m.validationLoss { entry["validation_loss"] = v }
                    if let v = m.validationAccuracy { entry["validation_accuracy"] = v }
                    return entry
                },
            ]
        }
        return object
    }
}

func iso8601(_ seconds: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
}

func jsonText(_ object: Any) throws -> String {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    return String(decoding: data, as: UTF8.self)
}
