import Foundation
import ModelKitCore
import ModelKitFormat
import ModelKitRuntime
import Testing
@testable import ModelKitSigning
@_exported import ModelKitTestSupport

private let tinyCNN = repositoryRoot + "/Fixtures/models/tiny-cnn.mkm"

private func hex(_ text: String) -> [UInt8] { Hex.decode(Array(text.utf8))! }

private func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let path = NSTemporaryDirectory() + "modelkit-signing-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// Runs `body` and returns the SignatureError it throws (nil, and an issue, otherwise).
private func signatureError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> SignatureError? {
    do {
        try body()
        Issue.record("expected a SignatureError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as SignatureError {
        #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a SignatureError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

@Suite("Ed25519 model signatures")
struct SignatureTests {
    /// RFC 8032 section 7.1, TEST 2 (one-byte message 0x72): our signing is standard Ed25519.
    @Test func matchesTheRFC8032TestVector() throws {
        let key = try SecretKey(seed: hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"))
        #expect(key.publicKey.bytes == hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"))
        let signature = try key.sign([0x72])
        #expect(signature == hex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
                                 + "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"))
        let file = SignatureFile(keyID: key.publicKey.id, signedSize: 1, signature: signature)
        try ModelSignature.verify(fileBytes: [0x72], signature: file, publicKey: key.publicKey)
    }

    @Test func aSignedModelVerifies() throws {
        let key = try SecretKey.generate()
        let bytes = try FileSystem.readFile(tinyCNN)
        let signature = try ModelSignature.sign(fileBytes: bytes, secretKey: key)
        #expect(signature.keyID == key.publicKey.id)
        #expect(signature.signedSize == UInt64(bytes.count))
        try ModelSignature.verify(fileBytes: bytes, signature: signature, publicKey: key.publicKey)
    }

    @Test(arguments: [0, 7, 8, 23, 24, 100, 1000, -1])
    func aChangedByteIsRefused(offset: Int) throws {
        let key = try SecretKey.generate()
        var bytes = try FileSystem.readFile(tinyCNN)
        let signature = try ModelSignature.sign(fileBytes: bytes, secretKey: key)
        let index = offset >= 0 ? offset : bytes.count + offset
        bytes[index] ^= 0x01
        let error = signatureError {
            try ModelSignature.verify(fileBytes: bytes, signature: signature, publicKey: key.publicKey, source: "m.mkm")
        }
        #expect(error == .badSignature(model: "m.mkm", keyID: key.publicKey.id))
    }

    @Test func aTruncatedOrExtendedFileIsRefused() throws {
        let key = try SecretKey.generate()
        let bytes = try FileSystem.readFile(tinyCNN)
        let signature = try ModelSignature.sign(fileBytes: bytes, secretKey: key)
        let shorter = signatureError {
            try ModelSignature.verify(fileBytes: Array(bytes.dropLast()), signature: signature, publicKey: key.publicKey)
        }
        #expect(shorter == .sizeMismatch(model: "model", signed: UInt64(bytes.count), actual: bytes.count - 1))
        let longer = signatureError {
            try ModelSignature.verify(fileBytes: bytes + [0], signature: signature, publicKey: key.publicKey)
        }
        #expect(longer == .sizeMismatch(model: "model", signed: UInt64(bytes.count), actual: bytes.count + 1))
    }

    @Test func anotherKeyIsRefused() throws {
        let signer = try SecretKey.generate(), other = try SecretKey.generate()
        let bytes = try FileSystem.readFile(tinyCNN)
        let signature = try ModelSignature.sign(fileBytes: bytes, secretKey: signer)
        let error = signatureError {
            try ModelSignature.verify(fileBytes: bytes, signature: signature, publicKey: other.publicKey)
        }
        #expect(error == .wrongKey(model: "model", signedBy: signer.publicKey.id, given: other.publicKey.id))
        // A signature that claims the verifier's key id still fails the Ed25519 check.
        var forged = signature
        forged.keyID = other.publicKey.id
        let forgedError = signatureError {
            try ModelSignature.verify(fileBytes: bytes, signature: forged, publicKey: other.publicKey)
        }
        #expect(forgedError == .badSignature(model: "model", keyID: other.publicKey.id))
    }

    @Test func signatureFilesRoundTripAndHaveTheDocumentedLayout() throws {
        let key = try SecretKey(seed: [UInt8](repeating: 7, count: 32))
        let signature = try ModelSignature.sign(fileBytes: [1, 2, 3], secretKey: key)
        let encoded = signature.encoded()
        #expect(encoded.count == 96)
        #expect(Array(encoded[0..<16]) == [0x89, 0x4D, 0x4B, 0x53, 0x0D, 0x0A, 0x1A, 0x0A, 1, 0, 0, 0, 1, 0, 0, 0])
        #expect(Array(encoded[16..<24]) == key.publicKey.id.bytes)
        #expect(Array(encoded[24..<32]) == [3, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(encoded[32...]) == signature.signature)
        #expect(try SignatureFile(decoding: encoded, path: "s") == signature)
    }

    @Test func malformedSignatureFilesAreRefused() throws {
        let key = try SecretKey(seed: [UInt8](repeating: 9, count: 32))
        let good = try ModelSignature.sign(fileBytes: [1], secretKey: key).encoded()
        func decodeError(_ bytes: [UInt8]) -> SignatureError? {
            signatureError { _ = try SignatureFile(decoding: bytes, path: "x.sig") }
        }
        #expect(decodeError([]) == .malformedSignature(path: "x.sig", reason: "0 bytes, expected 96"))
        #expect(decodeError(Array(good.dropLast())) == .malformedSignature(path: "x.sig", reason: "95 bytes, expected 96"))
        #expect(decodeError(good + [0]) == .malformedSignature(path: "x.sig", reason: "97 bytes, expected 96"))
        var badMagic = good
        badMagic[1] = UInt8(ascii: "X")
        #expect(decodeError(badMagic) == .malformedSignature(path: "x.sig", reason: "wrong magic bytes"))
        var newer = good
        newer[8] = 2
        #expect(decodeError(newer) == .unsupportedVersion(path: "x.sig", major: 2, minor: 0))
        var newerMinor = good
        newerMinor[10] = 1
        #expect(decodeError(newerMinor) == .unsupportedVersion(path: "x.sig", major: 1, minor: 1))
        var algorithm = good
        algorithm[12] = 2
        #expect(decodeError(algorithm) == .unknownAlgorithm(path: "x.sig", code: 2))
        var reserved = good
        reserved[14] = 1
        #expect(decodeError(reserved) == .malformedSignature(path: "x.sig", reason: "reserved bytes 13-15 are not zero"))
    }

    @Test func keyFilesRoundTripAndCarryATypeTag() throws {
        let key = try SecretKey.generate()
        let secretText = key.fileText, publicText = key.publicKey.fileText
        #expect(secretText.hasPrefix("modelkit-ed25519-secret-v1 ") && secretText.count == 27 + 64 + 1)
        #expect(publicText.hasPrefix("modelkit-ed25519-public-v1 ") && publicText.count == 27 + 64 + 1)
        #expect(try PublicKey(fileText: Array(publicText.utf8), path: "k.pub") == key.publicKey)
        #expect(try KeyFile.parse(Array(secretText.utf8), path: "k", expected: "secret") == key.seed)
        // Without the final newline, and with upper-case hex, still the same key.
        #expect(try PublicKey(fileText: Array(publicText.dropLast().uppercased().replacingOccurrences(
            of: "MODELKIT-ED25519-PUBLIC-V1", with: PublicKey.fileTag).utf8), path: "k.pub") == key.publicKey)
    }

    @Test func malformedKeyFilesAreRefused() throws {
        let key = try SecretKey.generate()
        let secretText = Array(key.fileText.utf8), publicText = Array(key.publicKey.fileText.utf8)
        func keyError(_ text: [UInt8]) -> SignatureError? {
            signatureError { _ = try PublicKey(fileText: text, path: "k.pub") }
        }
        #expect(keyError(secretText) == .wrongKeyType(path: "k.pub", expected: "public", found: "secret"))
        #expect(keyError([]) == .malformedKey(path: "k.pub", reason: "the file is empty"))
        #expect(keyError(publicText + publicText) == .malformedKey(path: "k.pub", reason: "more than one line"))
        #expect(keyError(Array("ssh-ed25519 AAAA".utf8))
                == .malformedKey(path: "k.pub", reason: "unknown type tag, expected modelkit-ed25519-public-v1"))
        #expect(keyError(Array(publicText.dropLast(3)) + [0x0A])
                == .malformedKey(path: "k.pub", reason: "the key is not 64 hex digits"))
        var notHex = publicText
        notHex[30] = UInt8(ascii: "g")
        #expect(keyError(notHex) == .malformedKey(path: "k.pub", reason: "the key is not 64 hex digits"))
        let secretError = signatureError { _ = try KeyFile.parse(publicText, path: "k", expected: "secret") }
        #expect(secretError == .wrongKeyType(path: "k", expected: "secret", found: "public"))
    }

    @Test func aSecretKeyOthersCanReadIsRefused() throws {
        try withTemporaryDirectory { directory in
            let key = try SecretKey.generate()
            let path = directory + "/key"
            try FileSystem.writeFileAtomically(path, bytes: Array(key.fileText.utf8), mode: 0o600)
            #expect(try SecretKey.read(path: path).seed == key.seed)
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            chmod(path, 0o644)
            let error = signatureError { _ = try SecretKey.read(path: path) }
            #expect(error == .unprotectedSecretKey(path: path, mode: 0o100644))
            #expect(error?.description.contains("mode 0644") == true)
        }
    }

    @Test func aSessionLoadsOnlyASignedModel() throws {
        try withTemporaryDirectory { directory in
            let key = try SecretKey.generate()
            let modelPath = directory + "/tiny.mkm"
            var bytes = try FileSystem.readFile(tinyCNN)
            try FileSystem.writeFileAtomically(modelPath, bytes: bytes)

            let missing = signatureError { _ = try Session(signedModelAt: modelPath, publicKey: key.publicKey) }
            #expect(missing == .missingSignature(model: modelPath, signature: modelPath + ".sig"))

            let signature = try ModelSignature.sign(fileBytes: bytes, secretKey: key)
            try FileSystem.writeFileAtomically(modelPath + ".sig", bytes: signature.encoded())
            let session = try Session(signedModelAt: modelPath, publicKey: key.publicKey)
            let plain = try Session(model: ModelFile.read(path: tinyCNN))
            #expect(session.model == plain.model)

            bytes[bytes.count / 2] ^= 0x80
            try FileSystem.writeFileAtomically(modelPath, bytes: bytes)
            let tampered = signatureError { _ = try Session(signedModelAt: modelPath, publicKey: key.publicKey) }
            #expect(tampered == .badSignature(model: modelPath, keyID: key.publicKey.id))
        }
    }
}
