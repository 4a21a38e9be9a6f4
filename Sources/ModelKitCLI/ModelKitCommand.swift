import ArgumentParser
import ModelKitCore

public struct ModelKitCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "modelkit",
        abstract: "Train, convert, quantize and run neural networks on edge CPUs.",
        discussion: """
            Exit codes: 0 success; 64 bad command line; 65 invalid model or input data; \
            66 a file that does not exist; 73 an output file that cannot be written; 70 internal error.
            """,
        version: ModelKitVersion.string,
        subcommands: [TrainCommand.self, EvalCommand.self, ExportCommand.self, QuantizeCommand.self, InspectCommand.self,
                      RunCommand.self, BenchCommand.self, KeygenCommand.self, SignCommand.self, VerifyCommand.self])

    public init() {}
}
