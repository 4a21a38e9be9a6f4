import ArgumentParser
import ModelKitCore
import ModelKitSigning

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a model's signature (MODEL.sig) against a public key, and that the model loads.",
        discussion: "Exit 0 for a good signature; 65 for a missing, wrong-key or non-matching signature.")

    @Argument(help: "A .mkm model or .mkc checkpoint.")
    var model: String

    @Option(name: .customLong("pub"), help: ArgumentHelp("The public key file (KEY.pub).", valueName: "PUB"))
    var publicKey: String

    @Option(help: ArgumentHelp("The signature file (default: MODEL.sig).", valueName: "SIG"))
    var signature: String?

    func run() throws {
        try reportingFailures {
            let key = try PublicKey.read(path: publicKey)
            let bytes = try SignedModelFile.verifiedBytes(path: model, publicKey: key, signaturePath: signature)
            _ = try LoadedModelCheck.decode(bytes, path: model)
            print("\(model): good signature by key \(key.id) (\(bytes.count) bytes)")
        }
    }
}
