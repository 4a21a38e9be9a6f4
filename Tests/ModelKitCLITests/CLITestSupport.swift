import Foundation

/// The repository root, found from this file's path.
let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

func fixture(_ relative: String) -> String { repositoryRoot + "/Fixtures/" + relative }

let fashionMNIST = "/usr/share/datasets/fashion-mnist"
let fashionTestImages = fashionMNIST + "/t10k-images-idx3-ubyte.gz"

/// The `modelkit` binary built next to the test bundle.
let modelkitBinary: String = {
    let bundleDirectory = Bundle.main.bundleURL.path
    let candidates = [bundleDirectory + "/modelkit",
                      URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/modelkit"]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
}()

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the real `modelkit` binary, as a user would.
func modelkit(_ arguments: String...) throws -> CommandResult {
    try modelkit(arguments: arguments)
}

func modelkit(arguments: [String]) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: modelkitBinary)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read before waiting so a large output cannot fill the pipe and block the child.
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                         stderr: String(decoding: stderr, as: UTF8.self))
}

func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "modelkit-cli-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
