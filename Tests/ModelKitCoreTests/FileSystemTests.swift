import Testing
import Foundation
import ModelKitCore

struct FileSystemTests {
    let directory: String = {
        let path = NSTemporaryDirectory() + "modelkit-fs-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    @Test func atomicWriteReplacesAndLeavesNoTemporaryFile() throws {
        let path = directory + "/file.bin"
        try FileSystem.writeFileAtomically(path, bytes: [1, 2, 3])
        try FileSystem.writeFileAtomically(path, bytes: [4, 5])
        #expect(try FileSystem.readFile(path) == [4, 5])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["file.bin"])
    }

    @Test func readErrorsNameTheFile() throws {
        #expect(throws: FileError.notFound(path: directory + "/missing")) { try FileSystem.readFile(directory + "/missing") }
        #expect(throws: FileError.isDirectory(path: directory)) { try FileSystem.readFile(directory) }
        let path = directory + "/big.bin"
        try FileSystem.writeFileAtomically(path, bytes: [UInt8](repeating: 0, count: 100))
        #expect(throws: FileError.tooLarge(path: path, size: 100, limit: 99)) { try FileSystem.readFile(path, limit: 99) }
    }

    @Test func writingIntoAMissingDirectoryFailsCleanly() {
        #expect(throws: FileError.self) { try FileSystem.writeFileAtomically(directory + "/no/such/dir/f", bytes: [1]) }
    }
}
