import ModelKitCore
import ModelKitFormat
import ModelKitRuntime

/// Reads a model only if its detached signature verifies. The bytes that are verified are the bytes
/// that are decoded (one read), so a file swapped between the check and the load is never used.
public enum SignedModelFile {
    /// Reads, verifies and decodes `path`. The signature is `signaturePath`, or `path + ".sig"`.
    public static func readWithInfo(path: String, publicKey: PublicKey, signaturePath: String? = nil,
                                     limits: Limits = .default) throws -> (model: Model, info: ContainerInfo) {
        let bytes = try verifiedBytes(path: path, publicKey: publicKey, signaturePath: signaturePath, limits: limits)
        return try ModelFile.decodeWithInfo(bytes, limits: limits)
    }

    public static func read(path: String, publicKey: PublicKey, signaturePath: String? = nil,
                            limits: Limits = .default) throws -> Model {
        try readWithInfo(path: path, publicKey: publicKey, signaturePath: signaturePath, limits: limits).model
    }

    /// The file's bytes, after its signature has been checked.
    public static func verifiedBytes(path: String, publicKey: PublicKey, signaturePath: String? = nil,
                                     limits: Limits = .default) throws -> [UInt8] {
        let sigPath = signaturePath ?? ModelSignature.signaturePath(forModel: path)
        let bytes = try FileSystem.readFile(path, limit: limits.maxPayloadBytes)
        guard FileSystem.fileExists(sigPath) else { throw SignatureError.missingSignature(model: path, signature: sigPath) }
        let signature = try SignatureFile.read(path: sigPath)
        try ModelSignature.verify(fileBytes: bytes, signature: signature, publicKey: publicKey, source: path)
        return bytes
    }
}

extension Session {
    /// A session over a model file that must carry a valid signature by `publicKey`.
    public convenience init(signedModelAt path: String, publicKey: PublicKey, signaturePath: String? = nil,
                            options: SessionOptions = SessionOptions()) throws {
        let model = try SignedModelFile.read(path: path, publicKey: publicKey, signaturePath: signaturePath,
                                             limits: options.limits)
        try self.init(model: model, options: options)
    }
}
