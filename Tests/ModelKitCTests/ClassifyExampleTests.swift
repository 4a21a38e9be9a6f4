import Foundation
import ModelKitCore
import ModelKitData
import Testing

/// Builds Examples/c/classify.c with the system C compiler against the header and the shared
/// library, and checks its top-1 against `modelkit run` on the same images.
@Suite(.serialized) struct ClassifyExampleTests {
    static let testImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"

    func buildClassify(in directory: String) throws -> String {
        let executable = directory + "/classify"
        let library = productsDirectory + "/libmodelkit_c.so"
        #expect(FileManager.default.fileExists(atPath: library), "build the modelkit_c product first: \(library)")
        // Under a sanitizer (Tools/sanitize) the library is instrumented and the program must link
        // the same runtime: the script names the compiler and flags in MODELKIT_TEST_CC.
        let compiler = (ProcessInfo.processInfo.environment["MODELKIT_TEST_CC"] ?? "cc").split(separator: " ").map(String.init)
        let compile = try runProcess("/usr/bin/env", compiler + [
            "-std=c11", "-Wall", "-Wextra", "-Werror",
            "-I", repositoryRoot + "/Sources/CModelKitAPI/include",
            repositoryRoot + "/Examples/c/classify.c",
            "-L", productsDirectory, "-lmodelkit_c", "-Wl,-rpath," + productsDirectory,
            "-o", executable,
        ])
        #expect(compile.status == 0, "cc failed: \(compile.stderr)")
        return executable
    }

    @Test func topOneMatchesModelkitRun() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let classify = try buildClassify(in: directory)
        let model = fixture("models/fashion-mlp.mkm")
        let images = try IDXFile.read(Self.testImages)
        let size = 28 * 28
        var classes: Set<Int> = []
        for index in [0, 1, 2, 7, 42, 123] {
            let path = directory + "/image\(index).npy"
            let pixels = images.data[(index * size)..<((index + 1) * size)].map(Float.init)
            try NpyArray(shape: [28, 28], values: pixels, dtype: .uint8).write(to: path)

            for threads in ["1", "2"] {
                let c = try runProcess(classify, [model, path, threads])
                #expect(c.status == 0, "classify failed: \(c.stderr)")
                let fields = c.stdout.trimmingCharacters(in: .newlines).split(separator: " ", maxSplits: 3)
                #expect(fields.count == 4 && fields[0] == "top-1:", "unexpected output: \(c.stdout)")
                guard fields.count == 4 else { continue }

                let cli = try runProcess(productsDirectory + "/modelkit", ["run", model, "-i", path, "--json", "--top-k", "1"])
                #expect(cli.status == 0, "modelkit run failed: \(cli.stderr)")
                let json = try JSONSerialization.jsonObject(with: Data(cli.stdout.utf8)) as! [String: Any]
                let top = ((json["samples"] as! [[String: Any]])[0]["top"] as! [[String: Any]])[0]
                #expect(Int(fields[1]) == top["class"] as? Int, "image \(index)")
                #expect(String(fields[3]) == top["label"] as? String)
                let score = Double(fields[2])!
                #expect(abs(score - (top["score"] as! Double)) < 1e-5)
                classes.insert(Int(fields[1])!)
            }
        }
        // Different images give different answers: the program really reads its input.
        #expect(classes.count >= 3)
    }

    @Test func reportsErrorsWithStatusNames() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let classify = try buildClassify(in: directory)
        let image = directory + "/image.npy"
        try NpyArray(shape: [28, 28], values: [Float](repeating: 0, count: 784), dtype: .uint8).write(to: image)

        let missing = try runProcess(classify, ["/no/such.mkm", image])
        #expect(missing.status == 2)
        #expect(missing.stderr == "classify: load: MK_ERROR_NOT_FOUND: /no/such.mkm: no such file\n")
        let corrupt = try runProcess(classify, [fixture("corrupt/flipped-payload-bits.mkm"), image])
        #expect(corrupt.status == 2)
        #expect(corrupt.stderr.hasPrefix("classify: load: MK_ERROR_INVALID_MODEL: "))
        let threads = try runProcess(classify, [fixture("models/fashion-mlp.mkm"), image, "0"])
        #expect(threads.stderr == "classify: threads: MK_ERROR_INVALID_ARGUMENT: threads must be 1...256, got 0\n")
    }
}
