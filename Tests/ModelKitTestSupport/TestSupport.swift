import Foundation

/// The repository root, found from this file's path (Tests/ModelKitTestSupport/TestSupport.swift).
public let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// Whether this process runs under AddressSanitizer (Tools/sanitize): its runtime exports
/// `__asan_init`. Tests that replace or tune malloc cannot run under it, since ASan owns malloc.
public let addressSanitizerIsActive: Bool = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil

/// The path of a file under `Fixtures/`.
public func fixture(_ relative: String) -> String { repositoryRoot + "/Fixtures/" + relative }

/// A new empty directory under the system's temporary directory.
public func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "modelkit-test-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

public struct ProcessResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs a program to completion and captures its output.
public func runProcess(_ executable: String, _ arguments: [String]) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read before waiting so a large output cannot fill the pipe and block the child.
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                         stderr: String(decoding: stderr, as: UTF8.self))
}

/// SplitMix64: a small deterministic generator so fixtures and tests are reproducible.
public struct SplitMix64 {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-scale, scale), exactly representable (24 random bits).
    public mutating func float(scale: Float = 1) -> Float {
        let unit = Float(next() >> 40) / Float(1 << 24)
        return (unit * 2 - 1) * scale
    }

    public mutating func nextFloat() -> Float { float() }

    public mutating func floats(_ count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in float(scale: scale) }
    }
}
