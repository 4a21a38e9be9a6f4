import ModelKitCore
import ModelKitFormat
import ModelKitSigning

/// A model or checkpoint read from disk, verified, with its container facts for `inspect`.
struct LoadedModel {
    var path: String
    var model: Model
    var info: ContainerInfo

    /// With `requireSignature` (a public key file), the model loads only if `path.sig` is a valid
    /// signature by that key over the file's exact bytes.
    init(path: String, requireSignature publicKeyPath: String? = nil) throws {
        self.path = path
        do {
            if let publicKeyPath {
                let key = try PublicKey.read(path: publicKeyPath)
                (model, info) = try SignedModelFile.readWithInfo(path: path, publicKey: key)
            } else {
                (model, info) = try ModelFile.readWithInfo(path: path)
            }
        } catch FormatError.io(let error) {
            throw error  // already names the path; keeps "not found" distinct for the exit code
        } catch let error as FormatError {
            throw CommandFailure.data("\(path): \(error)")
        }
    }
}

/// Decoding of already-read bytes with the same error mapping as `LoadedModel`.
enum LoadedModelCheck {
    static func decode(_ bytes: [UInt8], path: String) throws -> Model {
        do {
            return try ModelFile.decode(bytes)
        } catch let error as FormatError {
            throw CommandFailure.data("\(path): \(error)")
        }
    }
}
