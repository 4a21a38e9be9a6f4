import Testing
import ModelKitCore
@testable import ModelKitONNX

@Suite struct ONNXErrorTests {
    @Test func emptyBytesAreMalformed() {
        #expect(throws: ONNXError.malformed(reason: "the file is empty")) {
            try ONNXImporter.importModel(bytes: [])
        }
    }
}
