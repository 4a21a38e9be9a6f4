import ModelKitCore
import ModelKitFormat

/// A model or checkpoint read from disk, verified, with its container facts for `inspect`.
struct LoadedModel {
    var path: String
    var model: Model
    var info: ContainerInfo

    init(path: String) throws {
        self.path = path
        do {
            (model, info) = try ModelFile.readWithInfo(path: path)
        } catch FormatError.io(let error) {
            throw error  // already names the path; keeps "not found" distinct for the exit code
        } catch let error as FormatError {
            throw CommandFailure.data("\(path): \(error)")
        }
    }
}
