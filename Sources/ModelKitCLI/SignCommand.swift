import ArgumentParser
import ModelKitCore
import ModelKitSigning

struct SignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign a model or checkpoint with an Ed25519 secret key, writing MODEL.sig.",
        discussion: "The signature covers every byte of the file; the model file itself is not changed.")

    @Argument(help: "A .mkm model or .mkc checkpoint.")
    var model: String

    @Option(help: ArgumentHelp("The secret key file made by `modelkit keygen`.", valueName: "KEY"))
    var key: String

    @Option(help: ArgumentHelp("Where to write the signature (default: MODEL.sig).", valueName: "SIG"))
    var signature: String?

    func run() throws {
        try reportingFailures {
            let secretKey = try SecretKey.read(path: key)
            let bytes = try FileSystem.readFile(model)
            // Only a file that is a valid model gets a signature: a signer vouches for a model.
            _ = try LoadedModelCheck.decode(bytes, path: model)
            let sig = try ModelSignature.sign(fileBytes: bytes, secretKey: secretKey)
            let path = signature ?? ModelSignature.signaturePath(forModel: model)
            try FileSystem.writeFileAtomically(path, bytes: sig.encoded())
            print("signed \(model) (\(bytes.count) bytes) with key \(sig.keyID): \(path)")
        }
    }
}
