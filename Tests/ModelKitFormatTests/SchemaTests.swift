import Foundation
import Testing

@Suite("Generated schema code")
struct SchemaTests {
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("Sources/CModelKitSchema is what Tools/generate-schemas produces from Schemas/modelkit.proto")
    func generatedCodeIsCurrent() throws {
        let found = try Self.run(["bash", "-c", "command -v protoc-c"])
        try #require(found.status == 0,
                     "protoc-c is not installed; install protobuf-c-compiler (apt-get install protobuf-c-compiler) to check the generated code")
        try TestSupport.withTemporaryDirectory { directory in
            let result = try Self.run(["bash", TestSupport.path("Tools/generate-schemas"), directory])
            try #require(result.status == 0, "Tools/generate-schemas failed: \(result.output)")
            for file in ["modelkit.pb-c.c", "include/modelkit.pb-c.h"] {
                let fresh = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file))
                let committed = try Data(contentsOf: URL(fileURLWithPath: TestSupport.path("Sources/CModelKitSchema/" + file)))
                #expect(fresh == committed, "Sources/CModelKitSchema/\(file) is stale: run Tools/generate-schemas and commit")
            }
            #expect(!FileManager.default.fileExists(atPath: TestSupport.path("Sources/CModelKitSchema/empty.c")))
        }
    }
}
