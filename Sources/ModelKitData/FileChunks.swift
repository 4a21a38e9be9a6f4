#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ModelKitCore

/// A file read front to back in chunks, so a streaming reader touches only the part it needs.
final class FileChunks {
    let path: String
    /// The file's size when opened.
    let size: Int
    private let descriptor: Int32

    /// Opens `path`, refusing a directory or a file larger than `limits.maxFileBytes`, with the
    /// same errors as a whole-file read.
    init(path: String, limits: DataLimits) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT { throw DataError.file(.notFound(path: path)) }
            throw DataError.file(.cannotOpen(path: path, reason: Self.errorText(code)))
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let code = errno
            close(descriptor)
            throw DataError.file(.readFailed(path: path, reason: Self.errorText(code)))
        }
        guard (info.st_mode & S_IFMT) != S_IFDIR else {
            close(descriptor)
            throw DataError.file(.isDirectory(path: path))
        }
        guard Int(info.st_size) <= limits.maxFileBytes else {
            close(descriptor)
            throw DataError.file(.tooLarge(path: path, size: Int(info.st_size), limit: limits.maxFileBytes))
        }
        self.path = path
        self.size = Int(info.st_size)
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    static func errorText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }

    /// Up to `count` next bytes; empty at the end of the file.
    func next(_ count: Int = 1 << 16) throws -> [UInt8] {
        var filled = 0
        return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            defer { initialized = filled }
            while filled < count {
                let got = read(descriptor, buffer.baseAddress! + filled, count - filled)
                if got < 0 {
                    if errno == EINTR { continue }
                    throw DataError.file(.readFailed(path: path, reason: Self.errorText(errno)))
                }
                if got == 0 { break }
                filled += got
            }
        }
    }
}

/// The bytes of an uncompressed file, read front to back: `first` (already read) then the rest.
final class FileSource: ByteSource {
    let name: String
    private let file: FileChunks
    private var pending: [UInt8]
    private var pendingOffset = 0

    init(_ file: FileChunks, first: [UInt8]) {
        self.file = file
        self.name = file.path
        self.pending = first
    }

    func read(_ count: Int, into output: inout [UInt8]) throws -> Int {
        var got = 0
        while got < count {
            if pendingOffset == pending.count {
                pending = try file.next(max(count - got, 1 << 16))
                pendingOffset = 0
                if pending.isEmpty { break }
            }
            let take = min(count - got, pending.count - pendingOffset)
            output.append(contentsOf: pending[pendingOffset..<(pendingOffset + take)])
            pendingOffset += take
            got += take
        }
        return got
    }
}
