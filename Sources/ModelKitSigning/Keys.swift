import CSodium
import ModelKitCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The first 8 bytes of SHA-256 of a 32-byte Ed25519 public key, shown as 16 hex digits.
/// It names a key in messages and lets a signature say which key made it; it is not a security check
/// (the Ed25519 verification is).
public struct KeyID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 8, "a key id is 8 bytes")
        self.bytes = bytes
    }

    public init(publicKey: [UInt8]) {
        var digest = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        _ = crypto_hash_sha256(&digest, publicKey, UInt64(publicKey.count))
        self.init(bytes: Array(digest.prefix(8)))
    }

    public var description: String { Hex.encode(bytes) }
}

/// libsodium must be initialised once before use; `sodium_init` is idempotent and thread-safe.
enum Sodium {
    static let ready: Bool = sodium_init() >= 0

    static func require() throws {
        guard ready else { throw SignatureError.cryptoFailure(reason: "libsodium did not initialise") }
    }
}

/// An Ed25519 public key. Key file: one line, `modelkit-ed25519-public-v1 <64 hex digits>`.
public struct PublicKey: Hashable, Sendable {
    public static let byteCount = 32
    public static let fileTag = "modelkit-ed25519-public-v1"

    public let bytes: [UInt8]
    public var id: KeyID { KeyID(publicKey: bytes) }

    public init(bytes: [UInt8]) throws {
        guard bytes.count == PublicKey.byteCount else {
            throw SignatureError.malformedKey(path: "public key", reason: "\(bytes.count) bytes, expected 32")
        }
        self.bytes = bytes
    }

    /// The key file's text, newline-terminated.
    public var fileText: String { "\(PublicKey.fileTag) \(Hex.encode(bytes))\n" }

    public init(fileText: [UInt8], path: String) throws {
        let key = try KeyFile.parse(fileText, path: path, expected: "public")
        self.bytes = key
    }

    public static func read(path: String) throws -> PublicKey {
        try PublicKey(fileText: FileSystem.readFile(path, limit: KeyFile.maxBytes), path: path)
    }
}

/// An Ed25519 secret key, kept as its 32-byte seed (libsodium derives the 64-byte signing key).
/// Key file: one line, `modelkit-ed25519-secret-v1 <64 hex digits of the seed>`, mode 0600.
public struct SecretKey: Sendable {
    public static let seedByteCount = 32
    public static let fileTag = "modelkit-ed25519-secret-v1"

    public let seed: [UInt8]
    public let publicKey: PublicKey

    public init(seed: [UInt8]) throws {
        try Sodium.require()
        guard seed.count == SecretKey.seedByteCount else {
            throw SignatureError.malformedKey(path: "secret key", reason: "\(seed.count) bytes, expected 32")
        }
        var publicBytes = [UInt8](repeating: 0, count: PublicKey.byteCount)
        var signing = [UInt8](repeating: 0, count: 64)
        guard crypto_sign_ed25519_seed_keypair(&publicBytes, &signing, seed) == 0 else {
            throw SignatureError.cryptoFailure(reason: "cannot derive a key pair from the seed")
        }
        sodium_memzero(&signing, signing.count)
        self.seed = seed
        self.publicKey = try PublicKey(bytes: publicBytes)
    }

    /// A new key pair from the operating system's random source.
    public static func generate() throws -> SecretKey {
        try Sodium.require()
        var seed = [UInt8](repeating: 0, count: seedByteCount)
        randombytes_buf(&seed, seed.count)
        return try SecretKey(seed: seed)
    }

    public var fileText: String { "\(SecretKey.fileTag) \(Hex.encode(seed))\n" }

    /// Reads a secret key file, refusing one that group or others can read (as ssh does).
    /// The type tag is checked first, so a public key given by mistake is named as such.
    public static func read(path: String) throws -> SecretKey {
        let text = try FileSystem.readFile(path, limit: KeyFile.maxBytes)
        let seed = try KeyFile.parse(text, path: path, expected: "secret")
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & 0o077 != 0 {
            throw SignatureError.unprotectedSecretKey(path: path, mode: UInt32(info.st_mode))
        }
        return try SecretKey(seed: seed)
    }

    /// Signs `message` (pure Ed25519, RFC 8032) and returns the 64-byte signature.
    public func sign(_ message: [UInt8]) throws -> [UInt8] {
        var publicBytes = [UInt8](repeating: 0, count: PublicKey.byteCount)
        var signing = [UInt8](repeating: 0, count: 64)
        defer { sodium_memzero(&signing, signing.count) }
        guard crypto_sign_ed25519_seed_keypair(&publicBytes, &signing, seed) == 0 else {
            throw SignatureError.cryptoFailure(reason: "cannot derive a key pair from the seed")
        }
        var signature = [UInt8](repeating: 0, count: SignatureFile.signatureByteCount)
        var length: UInt64 = 0
        guard crypto_sign_ed25519_detached(&signature, &length, message, UInt64(message.count), signing) == 0,
              length == UInt64(SignatureFile.signatureByteCount) else {
            throw SignatureError.cryptoFailure(reason: "Ed25519 signing failed")
        }
        return signature
    }
}

/// The shared one-line text format of both key files.
enum KeyFile {
    static let maxBytes = 4096

    static func parse(_ text: [UInt8], path: String, expected: String) throws -> [UInt8] {
        var line = text
        if line.last == UInt8(ascii: "\n") { line.removeLast() }
        guard !line.isEmpty else { throw SignatureError.malformedKey(path: path, reason: "the file is empty") }
        guard !line.contains(UInt8(ascii: "\n")) else {
            throw SignatureError.malformedKey(path: path, reason: "more than one line")
        }
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw SignatureError.malformedKey(path: path, reason: "expected '<type tag> <hex key>' on one line")
        }
        let tag = String(decoding: parts[0], as: UTF8.self)
        let expectedTag = expected == "public" ? PublicKey.fileTag : SecretKey.fileTag
        if tag != expectedTag {
            if tag == PublicKey.fileTag { throw SignatureError.wrongKeyType(path: path, expected: expected, found: "public") }
            if tag == SecretKey.fileTag { throw SignatureError.wrongKeyType(path: path, expected: expected, found: "secret") }
            throw SignatureError.malformedKey(path: path, reason: "unknown type tag, expected \(expectedTag)")
        }
        guard let key = Hex.decode(Array(parts[1])), key.count == 32 else {
            throw SignatureError.malformedKey(path: path, reason: "the key is not 64 hex digits")
        }
        return key
    }
}

enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 15)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    static func decode(_ text: [UInt8]) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count / 2)
        var index = 0
        while index < text.count {
            guard let high = value(text[index]), let low = value(text[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
