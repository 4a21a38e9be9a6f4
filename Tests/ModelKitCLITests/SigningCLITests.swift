import Foundation
import Testing

private let tinyCNN = fixture("models/tiny-cnn.mkm")
private let mlp = fixture("models/fashion-mlp.mkm")

/// A model copied into a fresh directory with a new key pair beside it.
private struct SigningSetup {
    let directory: String
    let model: String
    let key: String
    var pub: String { key + ".pub" }

    init(source: String = tinyCNN) throws {
        directory = try temporaryDirectory()
        model = directory + "/model.mkm"
        key = directory + "/key"
        try FileManager.default.copyItem(atPath: source, toPath: model)
        let made = try modelkit("keygen", "-o", key)
        #expect(made.status == 0, "\(made.stderr)")
    }

    func sign() throws {
        let signed = try modelkit("sign", model, "--key", key)
        #expect(signed.status == 0, "\(signed.stderr)")
    }
}

/// Checks a refusal: exit 65 and exactly one line on stderr containing `fragment`.
private func expectRefused(_ result: CommandResult, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status == 65, "\(result.stderr)", sourceLocation: sourceLocation)
    #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)", sourceLocation: sourceLocation)
    #expect(result.stderr.contains(fragment), "missing '\(fragment)' in: \(result.stderr)", sourceLocation: sourceLocation)
}

@Suite("modelkit keygen, sign, verify and --require-signature")
struct SigningCLITests {
    @Test func keygenWritesAPrivateSecretKeyAndAPublicKey() throws {
        let setup = try SigningSetup()
        let secretMode = try FileManager.default.attributesOfItem(atPath: setup.key)[.posixPermissions] as? Int
        #expect(secretMode == 0o600)
        let secret = try String(contentsOfFile: setup.key, encoding: .utf8)
        let pub = try String(contentsOfFile: setup.pub, encoding: .utf8)
        #expect(secret.hasPrefix("modelkit-ed25519-secret-v1 "))
        #expect(pub.hasPrefix("modelkit-ed25519-public-v1 "))
        // An existing key is never overwritten by accident.
        let again = try modelkit("keygen", "-o", setup.key)
        #expect(again.status == 73)
        #expect(again.stderr.contains("already exists"))
        #expect(try String(contentsOfFile: setup.key, encoding: .utf8) == secret)
    }

    @Test func signThenVerifySucceedsAndLeavesTheModelUntouched() throws {
        let setup = try SigningSetup()
        let before = try Data(contentsOf: URL(fileURLWithPath: setup.model))
        try setup.sign()
        #expect(try Data(contentsOf: URL(fileURLWithPath: setup.model)) == before)
        let sig = try Data(contentsOf: URL(fileURLWithPath: setup.model + ".sig"))
        #expect(sig.count == 96)
        let verified = try modelkit("verify", setup.model, "--pub", setup.pub)
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("good signature by key"))
    }

    @Test func aTamperedByteIsRefused() throws {
        let setup = try SigningSetup()
        try setup.sign()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: setup.model)))
        bytes[bytes.count - 10] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: setup.model))
        expectRefused(try modelkit("verify", setup.model, "--pub", setup.pub), "signature does not match the file's contents")
        expectRefused(try modelkit("run", setup.model, "--input", fashionTestImages, "--index", "0",
                                   "--require-signature", setup.pub), "signature does not match the file's contents")
    }

    @Test func aWrongKeyIsRefused() throws {
        let setup = try SigningSetup()
        try setup.sign()
        let other = setup.directory + "/other"
        #expect(try modelkit("keygen", "-o", other).status == 0)
        expectRefused(try modelkit("verify", setup.model, "--pub", other + ".pub"), "signed by key")
        expectRefused(try modelkit("run", setup.model, "--input", fashionTestImages, "--index", "0",
                                   "--require-signature", other + ".pub"), "not by the given key")
    }

    @Test func aMissingSignatureIsRefused() throws {
        let setup = try SigningSetup()
        expectRefused(try modelkit("verify", setup.model, "--pub", setup.pub), "not signed")
        expectRefused(try modelkit("eval", setup.model, "--limit", "10", "--require-signature", setup.pub), "not signed")
    }

    @Test func runAndEvalAcceptASignedModelAndRefuseATamperedOne() throws {
        let setup = try SigningSetup(source: mlp)
        try setup.sign()
        let ran = try modelkit("run", setup.model, "--input", fashionTestImages, "--index", "0",
                               "--require-signature", setup.pub)
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stdout.hasPrefix("#0: Ankle boot"))
        let evaluated = try modelkit("eval", setup.model, "--limit", "20", "--require-signature", setup.pub)
        #expect(evaluated.status == 0, "\(evaluated.stderr)")
        // Appending one byte breaks the signature (and run refuses before reading any input).
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: setup.model))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0]))
        try handle.close()
        expectRefused(try modelkit("run", setup.model, "--input", fashionTestImages, "--index", "0",
                                   "--require-signature", setup.pub), "the file was changed after signing")
        expectRefused(try modelkit("eval", setup.model, "--limit", "20", "--require-signature", setup.pub),
                      "the file was changed after signing")
    }

    @Test func signRefusesAFileThatIsNotAModelAndAPublicKey() throws {
        let setup = try SigningSetup()
        let junk = setup.directory + "/junk.mkm"
        try Data("not a model".utf8).write(to: URL(fileURLWithPath: junk))
        expectRefused(try modelkit("sign", junk, "--key", setup.key), "junk.mkm")
        #expect(!FileManager.default.fileExists(atPath: junk + ".sig"))
        expectRefused(try modelkit("sign", setup.model, "--key", setup.pub), "is a public key, expected a secret key")
    }
}
