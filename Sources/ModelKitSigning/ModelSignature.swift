import CSodium
import ModelKitCore

/// A detached signature file (`MODEL.sig`): 96 bytes, little endian, layout in Schemas/FORMAT.md §7.
public struct SignatureFile: Hashable, Sendable {
    public static let magic: [UInt8] = [0x89, 0x4D, 0x4B, 0x53, 0x0D, 0x0A, 0x1A, 0x0A]  // \x89MKS\r\n\x1a\n
    public static let byteCount = 96
    public static let signatureByteCount = 64
    public static let majorVersion: UInt16 = 1
    public static let minorVersion: UInt16 = 0
    public static let ed25519: UInt8 = 1

    /// The key that made the signature.
    public var keyID: KeyID
    /// The length of the signed file in bytes.
    public var signedSize: UInt64
    /// The Ed25519 signature over the whole file.
    public var signature: [UInt8]

    public init(keyID: KeyID, signedSize: UInt64, signature: [UInt8]) {
        precondition(signature.count == SignatureFile.signatureByteCount, "an Ed25519 signature is 64 bytes")
        self.keyID = keyID
        self.signedSize = signedSize
        self.signature = signature
    }

    public func encoded() -> [UInt8] {
        var bytes = SignatureFile.magic
        append(SignatureFile.majorVersion, to: &bytes)
        append(SignatureFile.minorVersion, to: &bytes)
        bytes += [SignatureFile.ed25519, 0, 0, 0]
        bytes += keyID.bytes
        append(signedSize, to: &bytes)
        bytes += signature
        return bytes
    }

    /// Parses a signature file; `path` only names it in errors.
    public init(decoding bytes: [UInt8], path: String) throws {
        guard bytes.count >= 12 else {
            throw SignatureError.malformedSignature(path: path, reason: "\(bytes.count) bytes, expected \(SignatureFile.byteCount)")
        }
        guard Array(bytes[0..<8]) == SignatureFile.magic else {
            throw SignatureError.malformedSignature(path: path, reason: "wrong magic bytes")
        }
        let major = UInt16(bytes[8]) | UInt16(bytes[9]) << 8
        let minor = UInt16(bytes[10]) | UInt16(bytes[11]) << 8
        guard major == SignatureFile.majorVersion, minor == SignatureFile.minorVersion else {
            throw SignatureError.unsupportedVersion(path: path, major: major, minor: minor)
        }
        guard bytes.count == SignatureFile.byteCount else {
            throw SignatureError.malformedSignature(path: path, reason: "\(bytes.count) bytes, expected \(SignatureFile.byteCount)")
        }
        guard bytes[12] == SignatureFile.ed25519 else { throw SignatureError.unknownAlgorithm(path: path, code: bytes[12]) }
        guard bytes[13] == 0, bytes[14] == 0, bytes[15] == 0 else {
            throw SignatureError.malformedSignature(path: path, reason: "reserved bytes 13-15 are not zero")
        }
        keyID = KeyID(bytes: Array(bytes[16..<24]))
        signedSize = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[24 + $1]) << (8 * UInt64($1)) }
        signature = Array(bytes[32..<96])
    }

    public static func read(path: String) throws -> SignatureFile {
        try SignatureFile(decoding: FileSystem.readFile(path, limit: 4096), path: path)
    }

    private func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        for index in 0..<(T.bitWidth / 8) { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
    }
}

/// Ed25519 signatures over a model file's exact bytes.
public enum ModelSignature {
    /// The signature of `MODEL` lives in `MODEL.sig`.
    public static func signaturePath(forModel path: String) -> String { path + ".sig" }

    /// Signs the whole file content.
    public static func sign(fileBytes: [UInt8], secretKey: SecretKey) throws -> SignatureFile {
        let signature = try secretKey.sign(fileBytes)
        return SignatureFile(keyID: secretKey.publicKey.id, signedSize: UInt64(fileBytes.count), signature: signature)
    }

    /// Checks that `signature` was made by `publicKey` over exactly `fileBytes`; throws why not.
    /// `source` names the model in error messages.
    public static func verify(fileBytes: [UInt8], signature: SignatureFile, publicKey: PublicKey,
                              source: String = "model") throws {
        try Sodium.require()
        let given = publicKey.id
        guard signature.keyID == given else {
            throw SignatureError.wrongKey(model: source, signedBy: signature.keyID, given: given)
        }
        guard signature.signedSize == UInt64(fileBytes.count) else {
            throw SignatureError.sizeMismatch(model: source, signed: signature.signedSize, actual: fileBytes.count)
        }
        guard crypto_sign_ed25519_verify_detached(signature.signature, fileBytes, UInt64(fileBytes.count),
                                                  publicKey.bytes) == 0 else {
            throw SignatureError.badSignature(model: source, keyID: given)
        }
    }
}
