import ModelKitCore

/// A format version: `major` changes break older readers, `minor` changes add fields that older
/// readers may ignore.
public struct FormatVersion: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var major: UInt16
    public var minor: UInt16

    public init(major: UInt16, minor: UInt16) {
        self.major = major
        self.minor = minor
    }

    public static func < (lhs: FormatVersion, rhs: FormatVersion) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }

    public var description: String { "\(major).\(minor)" }
}

/// Why a model or checkpoint file could not be read or written. Each message is one line that
/// names what is wrong and where: a byte offset, a tensor, a node or a field.
public enum FormatError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Reading or writing the file itself failed.
    case io(FileError)
    case emptyFile
    /// The file is shorter than the fixed header.
    case truncatedHeader(size: Int)
    /// The first 8 bytes are not the modelkit magic.
    case badMagic(found: [UInt8])
    /// The file's major version is not one this reader understands.
    case unsupportedVersion(found: FormatVersion, supported: FormatVersion)
    /// The header's reserved flags field has bits this reader does not know.
    case unknownFlags(UInt32)
    /// The header declares a payload larger than `Limits.maxPayloadBytes`.
    case payloadTooLarge(declared: UInt64, limit: Int)
    /// The zstd frame ends before its last block or checksum.
    /// The buffer for a payload of this many bytes could not be allocated.
    case outOfMemory(bytes: Int)
    case truncatedFrame(reason: String)
    /// The bytes after the header are not a well-formed zstd frame.
    case corruptFrame(reason: String)
    /// The frame was written without zstd's content checksum.
    case missingChecksum
    /// The frame decompressed, but its content checksum does not match: the payload is damaged.
    case checksumMismatch
    /// The frame's content size (nil: not recorded) differs from the header's payload size.
    case payloadSizeMismatch(header: UInt64, frame: UInt64?)
    /// Bytes follow the single zstd frame.
    case trailingBytes(offset: Int, count: Int)
    /// protobuf-c could not parse the payload.
    case invalidProtobuf(size: Int)
    /// `ModelFile.kind` is unspecified, unknown, or does not agree with the training state.
    case invalidKind(reason: String)
    /// A node has no op this reader knows (an op added by a newer writer, or a broken file).
    case unknownOp(node: String)
    /// A node's attributes are not valid; `node` is the node name.
    case invalidNode(node: String, reason: String)
    /// A tensor or value is malformed; `tensor` is a label such as "initializer 'conv1.weight'".
    case invalidTensor(tensor: String, reason: String)
    /// A tensor's declared element count exceeds `Limits.maxTensorElements` (or overflows).
    case tensorTooLarge(tensor: String, dims: [Int64], limit: Int)
    /// A tensor's data has a different length than its shape and dtype need.
    case dataLengthMismatch(tensor: String, expected: Int, actual: Int)
    case invalidQuantization(tensor: String, reason: String)
    /// Two entries share a name; `what` says which list ("initializer", "optimizer slot", ...).
    case duplicateName(what: String, name: String)
    case invalidMetadata(reason: String)
    case invalidTrainingState(reason: String)
    /// The graph's structure or shapes are invalid (dangling names, cycles, arity, shapes...).
    case invalidGraph(GraphError)
    case compressionFailed(reason: String)
    case encodingFailed(reason: String)

    public var description: String {
        switch self {
        case .io(let error):
            return error.description
        case .emptyFile:
            return "file is empty (0 bytes); expected a \(ContainerHeader.size)-byte modelkit header"
        case .truncatedHeader(let size):
            return "file is \(size) bytes, shorter than the \(ContainerHeader.size)-byte modelkit header: truncated"
        case .badMagic(let found):
            let hex = found.map { byte in
                let digits = String(byte, radix: 16, uppercase: true)
                return byte < 16 ? "0" + digits : digits
            }.joined(separator: " ")
            return "bytes 0-7 are \(hex), not the modelkit magic 89 4D 4B 4D 0D 0A 1A 0A "
                + "(not a modelkit file, or mangled by a text-mode transfer)"
        case .unsupportedVersion(let found, let supported):
            if found.major > supported.major {
                return "file is format \(found), this reader supports up to \(supported.major).x; upgrade modelkit"
            }
            return "file is format \(found), this reader supports \(supported.major).0 to \(supported.major).x"
        case .unknownFlags(let flags):
            return "header flags (bytes 12-15) are 0x\(String(flags, radix: 16)), but no flags are defined "
                + "in format \(ContainerHeader.currentVersion); written by a newer modelkit?"
        case .payloadTooLarge(let declared, let limit):
            return "header (bytes 16-23) declares a payload of \(declared) bytes, more than the limit of \(limit)"
        case .outOfMemory(let bytes):
            return "cannot allocate \(bytes) bytes to decompress the payload into"
        case .truncatedFrame(let reason):
            return "zstd frame at byte \(ContainerHeader.size) is truncated: \(reason)"
        case .corruptFrame(let reason):
            return "zstd frame at byte \(ContainerHeader.size) is corrupt: \(reason)"
        case .missingChecksum:
            return "zstd frame at byte \(ContainerHeader.size) has no content checksum; the format requires one"
        case .checksumMismatch:
            return "zstd content checksum of the payload does not match: the file is damaged"
        case .payloadSizeMismatch(let header, let frame):
            let frameText = frame.map { "\($0) bytes" } ?? "an unrecorded size"
            return "header declares a payload of \(header) bytes but the zstd frame holds \(frameText)"
        case .trailingBytes(let offset, let count):
            return "\(count) unexpected bytes after the zstd frame, at byte \(offset)"
        case .invalidProtobuf(let size):
            return "payload is not a valid modelkit protobuf message (\(size) bytes could not be parsed)"
        case .invalidKind(let reason):
            return "file kind: \(reason)"
        case .unknownOp(let node):
            return "node '\(node)' has an op this reader does not know (written by a newer modelkit?) or none"
        case .invalidNode(let node, let reason):
            return "node '\(node)': \(reason)"
        case .invalidTensor(let tensor, let reason):
            return "\(tensor): \(reason)"
        case .tensorTooLarge(let tensor, let dims, let limit):
            let shape = "[" + dims.map(String.init).joined(separator: "x") + "]"
            return "\(tensor) declares shape \(shape), more than the limit of \(limit) elements"
        case .dataLengthMismatch(let tensor, let expected, let actual):
            return "\(tensor) has \(actual) bytes of data, but its shape and dtype need \(expected)"
        case .invalidQuantization(let tensor, let reason):
            return "\(tensor): invalid quantization: \(reason)"
        case .duplicateName(let what, let name):
            return "\(what) '\(name)' appears more than once"
        case .invalidMetadata(let reason):
            return "metadata: \(reason)"
        case .invalidTrainingState(let reason):
            return "training state: \(reason)"
        case .invalidGraph(let error):
            return "invalid graph: \(error)"
        case .compressionFailed(let reason):
            return "zstd compression failed: \(reason)"
        case .encodingFailed(let reason):
            return "cannot encode model: \(reason)"
        }
    }
}
