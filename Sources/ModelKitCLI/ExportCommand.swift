import ArgumentParser
import ModelKitCore
import ModelKitFormat
import ModelKitONNX
import ModelKitPasses
import ModelKitRuntime

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Turn a checkpoint, model or ONNX file into an optimized, verified deployable model.",
        discussion: """
            INPUT is a .mkc checkpoint (its training state is dropped; labels, normalisation and \
            producer are kept), a .mkm model, or an .onnx file. There is no separate import \
            command: 'modelkit export model.onnx -o model.mkm' imports ONNX. The graph passes run \
            next (all of them unless --passes or --no-optimize), then the input and the written \
            model are both run on the same sample batch; if any output differs by more than \
            1e-5 relative (1e-4 absolute for ONNX input) nothing is written and the exit status is 65. \
            An int8 model exported to ONNX is written in QDQ form (QuantizeLinear/DequantizeLinear \
            around float ops) and is not read back: modelkit does not import QDQ ONNX.

            Passes (default order): \(PassPipeline.allPasses.map { "\($0.name) (\($0.summary))" }.joined(separator: "; ")).
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case mkm
        case onnx
    }

    @Argument(help: "A .mkc checkpoint, .mkm model or .onnx file.")
    var input: String

    @Option(name: .shortAndLong, help: "The file to write (.mkm or .onnx).")
    var output: String

    @Option(help: "Output format (default: from the output file's extension).")
    var format: Format?

    @Flag(name: .customLong("no-optimize"), help: "Run no graph passes.")
    var noOptimize = false

    @Option(help: "Comma-separated passes to run, in this order, instead of all of them.")
    var passes: String?

    @Option(name: .customLong("compression-level"), help: "zstd level for .mkm output (default 9).")
    var compressionLevel: Int32?

    func validate() throws {
        if noOptimize && passes != nil { throw ValidationError("give --passes or --no-optimize, not both") }
        if let names = try passNames() { _ = try pipeline(names) }
        let format = try outputFormat()
        if let compressionLevel {
            guard format == .mkm else { throw ValidationError("--compression-level applies to .mkm output only") }
            guard (-(1 << 17)...22).contains(compressionLevel) else {
                throw ValidationError("--compression-level must be between -131072 and 22")
            }
        }
    }

    private func passNames() throws -> [String]? {
        guard let passes else { return nil }
        let names = passes.split(separator: ",", omittingEmptySubsequences: false)
            .map { String($0).trimmingCharacters(in: " ") }
        guard !names.contains(where: \.isEmpty) else { throw ValidationError("--passes has an empty pass name") }
        return names
    }

    private func pipeline(_ names: [String]) throws -> PassPipeline {
        do {
            return try PassPipeline(names: names)
        } catch let error as PassError {
            throw ValidationError("\(error)")
        }
    }

    private func outputFormat() throws -> Format {
        if let format { return format }
        let lower = output.lowercased()
        if lower.hasSuffix(".mkm") { return .mkm }
        if lower.hasSuffix(".onnx") { return .onnx }
        throw ValidationError("cannot tell the output format from '\(output)': use a .mkm or .onnx name, or --format")
    }

    func run() throws {
        try reportingFailures {
            let format = try outputFormat()
            let source = try ExportSource(path: input)
            var model = source.model
            if model.kind == .checkpoint {
                model.kind = .model
                model.training = nil
            }
            let reference = model

            var rewrites: [String: Int] = [:]
            if !noOptimize {
                let selected = try passNames().map(pipeline) ?? PassPipeline.standard
                do {
                    (model.graph, rewrites) = try selected.run(model.graph)
                } catch let error as PassError {
                    if case .invalidResult = error { throw CommandFailure(description: error.description, status: ExitStatus.software) }
                    throw CommandFailure.data("\(input): \(error)")
                }
            }

            let bytes: [UInt8]
            // The written model read back, to be compared with the input; nil for QDQ ONNX,
            // which the importer does not read.
            let written: Model?
            switch format {
            case .mkm:
                bytes = try ModelFile.encode(model, compressionLevel: compressionLevel ?? ModelFile.defaultCompressionLevel)
                written = try ModelFile.decode(bytes)
            case .onnx:
                bytes = try ONNXExporter.export(model)
                written = model.graph.isQuantized ? nil : try ONNXImporter.importModel(bytes: bytes)
            }
            let check = try written.map {
                try ExportVerifier(reference: reference, candidate: $0, absoluteTolerance: source.isONNX ? 1e-4 : nil).run()
            }
            if let check, !check.passed {
                throw CommandFailure.data("verification failed: output '\(check.worstOutput)' differs by "
                    + "\(check.maxDifference), more than the tolerance \(check.tolerance); \(output) was not written")
            }
            try FileSystem.writeFileAtomically(output, bytes: bytes)

            let before = source.model.graph, after = model.graph
            print("input:       \(input) (\(source.description), \(grouped(source.fileBytes)) bytes)")
            print("output:      \(output) (\(format.rawValue), \(grouped(bytes.count)) bytes)")
            let applied = rewrites.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            print("passes:      \(noOptimize ? "none (--no-optimize)" : applied.isEmpty ? "nothing to change" : applied.joined(separator: ", "))")
            print("ops before:  \(before.nodes.count) (\(opSummary(before)))")
            print("ops after:   \(after.nodes.count) (\(opSummary(after)))")
            print("parameters:  \(grouped(before.parameterCount)) -> \(grouped(after.parameterCount))")
            if let check {
                print("verified:    \(check.samples) samples, max difference \(check.maxDifference) (tolerance \(check.tolerance))")
            } else {
                print("verified:    no (int8 QDQ ONNX is not read back by modelkit; Tools/check-int8-onnx-parity "
                    + "compares it with onnxruntime)")
            }
        }
    }

    private func opSummary(_ graph: Graph) -> String {
        let counts = graph.nodes.reduce(into: [String: Int]()) { $0[$1.operation.name, default: 0] += 1 }
        return counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}

private extension Graph {
    /// Whether the graph holds int8 values (a `modelkit quantize` model).
    var isQuantized: Bool {
        !valueQuantization.isEmpty || inputs.contains { $0.dtype != .float32 }
            || initializers.values.contains { $0.dtype != .float32 }
    }
}

private extension String {
    func trimmingCharacters(in set: Character) -> String {
        var result = Substring(self)
        while result.first == set { result.removeFirst() }
        while result.last == set { result.removeLast() }
        return String(result)
    }
}
