import ModelKitCore

/// Why a model's signature, or a key, was refused. Every message is one line and names the file.
public enum SignatureError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The model has no signature file beside it (or at the given path).
    case missingSignature(model: String, signature: String)
    /// The signature file is not 96 bytes of a modelkit signature.
    case malformedSignature(path: String, reason: String)
    /// A signature version this reader does not know; it is refused rather than half-understood.
    case unsupportedVersion(path: String, major: UInt16, minor: UInt16)
    /// An algorithm code other than 1 (Ed25519).
    case unknownAlgorithm(path: String, code: UInt8)
    /// The signature names a different key than the one given to check it with.
    case wrongKey(model: String, signedBy: KeyID, given: KeyID)
    /// The signature covers a file of another length: the model was truncated, extended or replaced.
    case sizeMismatch(model: String, signed: UInt64, actual: Int)
    /// Ed25519 verification failed: the bytes were changed after signing, or the signature was forged.
    case badSignature(model: String, keyID: KeyID)
    /// A key file that is not one line of `modelkit-ed25519-{public,secret}-v1 <hex>`.
    case malformedKey(path: String, reason: String)
    /// A public key where a secret key was expected, or the other way round.
    case wrongKeyType(path: String, expected: String, found: String)
    /// A secret key file that other users can read.
    case unprotectedSecretKey(path: String, mode: UInt32)
    /// libsodium could not initialise or sign.
    case cryptoFailure(reason: String)

    public var description: String {
        switch self {
        case .missingSignature(let model, let signature):
            return "\(model): not signed: no signature file \(signature)"
        case .malformedSignature(let path, let reason):
            return "\(path): not a modelkit signature: \(reason)"
        case .unsupportedVersion(let path, let major, let minor):
            return "\(path): signature version \(major).\(minor) is not supported (this reader knows 1.0)"
        case .unknownAlgorithm(let path, let code):
            return "\(path): unknown signature algorithm \(code) (1 = Ed25519)"
        case .wrongKey(let model, let signedBy, let given):
            return "\(model): signed by key \(signedBy), not by the given key \(given)"
        case .sizeMismatch(let model, let signed, let actual):
            return "\(model): signature does not match: it covers \(signed) bytes, the file has \(actual) (the file was changed after signing)"
        case .badSignature(let model, let keyID):
            return "\(model): signature does not match the file's contents (changed after signing, or not signed by key \(keyID))"
        case .malformedKey(let path, let reason):
            return "\(path): not a modelkit key file: \(reason)"
        case .wrongKeyType(let path, let expected, let found):
            return "\(path): is a \(found) key, expected a \(expected) key"
        case .unprotectedSecretKey(let path, let mode):
            return "\(path): secret key is readable by other users (mode \(octal(mode))); run chmod 600 on it"
        case .cryptoFailure(let reason):
            return "cryptography failed: \(reason)"
        }
    }
}

private func octal(_ mode: UInt32) -> String {
    let digits = String(mode & 0o777, radix: 8)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}
