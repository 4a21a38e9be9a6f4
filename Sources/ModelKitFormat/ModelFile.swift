import ModelKitCore

/// Reads and writes .mkm models and .mkc checkpoints: a 24-byte header, then one zstd frame
/// (with content checksum) holding a `modelkit.v1.ModelFile` protobuf message. See
/// Schemas/FORMAT.md for the byte layout and version rules.
public enum ModelFile {
    /// The version this library writes; it reads every 1.x file.
    public static var formatVersion: FormatVersion { ContainerHeader.currentVersion }
    public static let modelExtension = "mkm"
    public static let checkpointExtension = "mkc"
    public static let defaultCompressionLevel: Int32 = 9

    /// The file bytes of `model`. The model is validated first (as a reader would) unless
    /// `validate` is false, so a writer never produces a file the reader rejects.
    public static func encode(_ model: Model, compressionLevel: Int32 = defaultCompressionLevel,
                              limits: Limits = .default) throws -> [UInt8] {
        try encode(model, compressionLevel: compressionLevel, limits: limits, validate: true)
    }

    /// `validate: false` exists for tests that build deliberately broken files.
    package static func encode(_ model: Model, compressionLevel: Int32, limits: Limits, validate: Bool) throws -> [UInt8] {
        if validate { try ModelValidator.validate(model, limits: limits) }
        let payload = try ProtoEncoder.encode(model)
        guard payload.count <= limits.maxPayloadBytes else {
            throw FormatError.encodingFailed(reason: "payload of \(payload.count) bytes exceeds the limit of \(limits.maxPayloadBytes)")
        }
        return try container(payload: payload, compressionLevel: compressionLevel)
    }

    /// Header + one checksummed zstd frame around `payload`.
    ///
    /// Weights barely compress (the Fashion CNN: 8%), and zstd spends that saving's worth in
    /// Huffman-decoding literals at ~0.5 GB/s instead of copying them at ~5 GB/s: 0.69 of a 1.0 ms
    /// load. So a frame that saves less than an eighth of the payload is written again at level -1,
    /// whose literals are stored raw (any compression level still yields a file every reader reads).
    package static func container(payload: [UInt8], compressionLevel: Int32 = defaultCompressionLevel,
                                  checksum: Bool = true) throws -> [UInt8] {
        var frame = try payload.withUnsafeBytes { try ZstdFrame.compress($0, level: compressionLevel, checksum: checksum) }
        if compressionLevel > ZstdFrame.rawLiteralsLevel && frame.count > payload.count - payload.count / 8 {
            frame = try payload.withUnsafeBytes { try ZstdFrame.compress($0, level: ZstdFrame.rawLiteralsLevel, checksum: checksum) }
        }
        var bytes = ContainerHeader(payloadSize: UInt64(payload.count)).bytes
        bytes.append(contentsOf: frame)
        return bytes
    }

    /// Decodes and fully verifies file bytes; see `decodeWithInfo`.
    public static func decode(_ bytes: [UInt8], limits: Limits = .default) throws -> Model {
        try decodeWithInfo(bytes, limits: limits).model
    }

    /// Decodes file bytes, verifying the header, the zstd frame and its checksum, the protobuf
    /// message, every tensor, the metadata, the training state and the graph before returning.
    public static func decodeWithInfo(_ bytes: [UInt8], limits: Limits = .default) throws -> (model: Model, info: ContainerInfo) {
        let (payload, info) = try payloadWithInfo(bytes, limits: limits)
        let model = try ProtoDecoder.decode(payload, limits: limits)
        try ModelValidator.validate(model, limits: limits)
        return (model, info)
    }

    /// The verified, decompressed protobuf payload of file bytes.
    package static func payloadWithInfo(_ bytes: [UInt8], limits: Limits = .default) throws -> ([UInt8], ContainerInfo) {
        try bytes.withUnsafeBytes { raw in
            let header = try ContainerHeader.parse(raw, limits: limits)
            let frame = UnsafeRawBufferPointer(rebasing: raw[ContainerHeader.size...])
            let frameSize = try ZstdFrame.check(frame, header: header)
            let payload = try ZstdFrame.decompress(frame, header: header)
            let info = ContainerInfo(version: header.version, payloadBytes: payload.count, frameBytes: frameSize,
                                     fileBytes: raw.count)
            return (payload, info)
        }
    }

    /// Container facts from the header and frame header alone, without decompressing.
    public static func info(_ bytes: [UInt8], limits: Limits = .default) throws -> ContainerInfo {
        try bytes.withUnsafeBytes { raw in
            let header = try ContainerHeader.parse(raw, limits: limits)
            let frameSize = try ZstdFrame.check(UnsafeRawBufferPointer(rebasing: raw[ContainerHeader.size...]), header: header)
            return ContainerInfo(version: header.version, payloadBytes: Int(header.payloadSize), frameBytes: frameSize,
                                 fileBytes: raw.count)
        }
    }

    public static func info(path: String, limits: Limits = .default) throws -> ContainerInfo {
        try info(try readBytes(path, limits: limits), limits: limits)
    }

    public static func read(path: String, limits: Limits = .default) throws -> Model {
        try readWithInfo(path: path, limits: limits).model
    }

    /// Reads, decompresses and fully verifies a file, as `decodeWithInfo` does for its bytes. The
    /// frame is read into the block protobuf-c then unpacks the message tree into, and the payload
    /// buffer is released once the tree exists, before the tensors are built.
    public static func readWithInfo(path: String, limits: Limits = .default) throws -> (model: Model, info: ContainerInfo) {
        var info: ContainerInfo?
        // The tree keeps the block; it goes with the tree, before validation.
        let unpacked = try withPayloadInArena(path: path, limits: limits) { payload, payloadInfo, arena in
            info = payloadInfo
            return try UnpackedModelFile(payload, arena: arena)
        }
        let model = try ProtoDecoder(limits: limits).model(unpacked.file.pointee)
        _ = consume unpacked
        try ModelValidator.validate(model, limits: limits)
        return (model, info!)
    }

    /// Calls `body` with the verified, decompressed payload of the file at `path`, valid only
    /// during the call, and the `UnpackArena` the frame was read into: the block to unpack the
    /// payload's message tree into, over the frame's pages.
    static func withPayloadInArena<Result: ~Copyable>(
        path: String, limits: Limits,
        _ body: (UnsafeRawBufferPointer, ContainerInfo, UnpackArena) throws -> Result) throws -> Result {
        var arena: UnpackArena?
        return try withPayload(path: path, limits: limits, frameSpace: { payloadSize, frameSize in
            let block = try UnpackArena(payloadSize: payloadSize, frameSize: frameSize)
            arena = block
            return block.frameSpace(count: frameSize)
        }) { payload, info in try body(payload, info, arena!) }
    }

    /// Calls `body` with the verified, decompressed payload of the file at `path`, valid only
    /// during the call; the frame is read into a buffer of its own.
    package static func withPayload<Result: ~Copyable>(path: String, limits: Limits = .default,
                                                       _ body: (UnsafeRawBufferPointer, ContainerInfo) throws -> Result)
        throws -> Result {
        var frameBuffer: UnsafeMutableRawBufferPointer?
        defer { frameBuffer?.deallocate() }
        return try withPayload(path: path, limits: limits, frameSpace: { _, frameSize in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(frameSize, 1), alignment: 16)
            frameBuffer = buffer
            return UnsafeMutableRawBufferPointer(rebasing: buffer[..<frameSize])
        }, body)
    }

    /// Calls `body` with the verified, decompressed payload of the file at `path`, valid only
    /// during the call. The frame is read into the `frameSize` bytes `frameSpace` returns for the
    /// header's payload size and the file's frame size (both checked against the limits); they
    /// are not read again once `body` is called.
    package static func withPayload<Result: ~Copyable>(
        path: String, limits: Limits,
        frameSpace: (_ payloadSize: Int, _ frameSize: Int) throws -> UnsafeMutableRawBufferPointer,
        _ body: (UnsafeRawBufferPointer, ContainerInfo) throws -> Result) throws -> Result {
        do {
            let file = try ReadableFile(path: path, limit: fileLimit(limits))
            var head = [UInt8](repeating: 0, count: min(file.size, ContainerHeader.size))
            let headCount = try head.withUnsafeMutableBytes { try file.read(at: 0, into: $0) }
            head.removeLast(head.count - headCount)
            let header = try head.withUnsafeBytes { try ContainerHeader.parse($0, limits: limits) }
            let payloadSize = Int(header.payloadSize)  // parse checked it against the limit
            let frameSpaceSize = file.size - ContainerHeader.size
            let frameSpace = try frameSpace(payloadSize, frameSpaceSize)
            // The file may have shrunk since it was opened: then the frame is what was read.
            let frameCount = try file.read(at: ContainerHeader.size, into: frameSpace)
            let frame = UnsafeRawBufferPointer(rebasing: frameSpace[..<frameCount])
            let frameSize = try ZstdFrame.check(frame, header: header)
            let buffer = try PayloadBuffer(payloadSize: payloadSize)
            try ZstdFrame.decompress(frame, into: buffer.bytes, header: header)
            let info = ContainerInfo(version: header.version, payloadBytes: payloadSize, frameBytes: frameSize,
                                     fileBytes: ContainerHeader.size + frameCount)
            return try body(UnsafeRawBufferPointer(buffer.bytes), info)
        } catch let error as FileError {
            throw FormatError.io(error)
        }
    }

    /// Encodes `model` and writes it atomically (temporary file, fsync, rename): readers see the
    /// old file or the complete new one.
    public static func write(_ model: Model, to path: String, compressionLevel: Int32 = defaultCompressionLevel,
                             limits: Limits = .default) throws {
        let bytes = try encode(model, compressionLevel: compressionLevel, limits: limits)
        do {
            try FileSystem.writeFileAtomically(path, bytes: bytes)
        } catch let error as FileError {
            throw FormatError.io(error)
        }
    }

    /// A file can be no larger than the header plus zstd's bound for the largest payload.
    static func fileLimit(_ limits: Limits) -> Int {
        let payloadLimit = limits.maxPayloadBytes
        let slack = payloadLimit / 128 + (1 << 17)
        let (sum, overflow) = payloadLimit.addingReportingOverflow(slack + ContainerHeader.size)
        return overflow ? Int.max : sum
    }

    static func readBytes(_ path: String, limits: Limits) throws -> [UInt8] {
        do {
            return try FileSystem.readFile(path, limit: fileLimit(limits))
        } catch let error as FileError {
            throw FormatError.io(error)
        }
    }
}
