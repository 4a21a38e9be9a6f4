import ArgumentParser
import ModelKitCore
import ModelKitSigning

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make an Ed25519 key pair for signing models: KEY (secret, mode 0600) and KEY.pub.",
        discussion: "Key file format: Schemas/FORMAT.md, section 7.")

    @Option(name: .shortAndLong, help: ArgumentHelp("The secret key file; the public key goes to KEY.pub.", valueName: "KEY"))
    var output: String

    @Flag(help: "Replace existing key files.")
    var force = false

    func run() throws {
        try reportingFailures {
            let publicPath = output + ".pub"
            if !force {
                for path in [output, publicPath] where FileSystem.fileExists(path) {
                    throw CommandFailure(description: "\(path): already exists (use --force to replace it)",
                                         status: ExitStatus.cannotCreate)
                }
            }
            let key = try SecretKey.generate()
            try FileSystem.writeFileAtomically(output, bytes: Array(key.fileText.utf8), mode: 0o600)
            try FileSystem.writeFileAtomically(publicPath, bytes: Array(key.publicKey.fileText.utf8), mode: 0o644)
            print("key \(key.publicKey.id): secret \(output), public \(publicPath)")
        }
    }
}
