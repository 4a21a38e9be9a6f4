import Foundation
@_exported import ModelKitTestSupport

let fashionMNIST = "/usr/share/datasets/fashion-mnist"
let fashionTestImages = fashionMNIST + "/t10k-images-idx3-ubyte.gz"

/// The `modelkit` binary built next to the test bundle.
let modelkitBinary: String = {
    let bundleDirectory = Bundle.main.bundleURL.path
    let candidates = [bundleDirectory + "/modelkit",
                      URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/modelkit"]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
}()

typealias CommandResult = ProcessResult

/// Runs the real `modelkit` binary, as a user would.
func modelkit(_ arguments: String...) throws -> CommandResult {
    try modelkit(arguments: arguments)
}

func modelkit(arguments: [String]) throws -> CommandResult {
    try runProcess(modelkitBinary, arguments)
}

