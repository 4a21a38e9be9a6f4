#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file could not be read or written.
public enum FileError: Error, Hashable, Sendable, CustomStringConvertible {
    case notFound(path: String)
    case cannotOpen(path: String, reason: String)
    case isDirectory(path: String)
    case tooLarge(path: String, size: Int, limit: Int)
    case readFailed(path: String, reason: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .notFound(let path): return "\(path): no such file"
        case .cannotOpen(let path, let reason): return "\(path): cannot open: \(reason)"
        case .isDirectory(let path): return "\(path): is a directory, expected a file"
        case .tooLarge(let path, let size, let limit): return "\(path): \(size) bytes, more than the limit of \(limit)"
        case .readFailed(let path, let reason): return "\(path): read failed: \(reason)"
        case .writeFailed(let path, let reason): return "\(path): write failed: \(reason)"
        }
    }
}

/// Whole-file reads and atomic writes through the C library, so the runtime core needs no Foundation.
public enum FileSystem {
    static func errorText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }

    public static func fileExists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Size in bytes of a regular file.
    public static func fileSize(_ path: String) throws -> Int {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            if code == ENOENT { throw FileError.notFound(path: path) }
            throw FileError.cannotOpen(path: path, reason: errorText(code))
        }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw FileError.isDirectory(path: path) }
        return Int(info.st_size)
    }

    /// Reads a whole file, refusing files larger than `limit` bytes before allocating.
    public static func readFile(_ path: String, limit: Int = 1 << 32) throws -> [UInt8] {
        let file = try ReadableFile(path: path, limit: limit)
        // Uninitialised: every byte kept is written by read(2), so zero-filling first is wasted work.
        return try [UInt8](unsafeUninitializedCapacity: file.size) { buffer, initialized in
            initialized = try file.read(at: 0, into: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    /// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename,
    /// then fsync of the directory. A reader sees the old file or the whole new one, never a part.
    /// `mode` is the new file's permission bits (0o600 for a secret key); the temporary file is
    /// created 0600 by mkstemp, so secret bytes are never readable by others, even briefly.
    public static func writeFileAtomically(_ path: String, bytes: [UInt8], mode: UInt32 = 0o644) throws {
        try bytes.withUnsafeBytes { try writeFileAtomically(path, buffer: $0, mode: mode) }
    }

    public static func writeFileAtomically(_ path: String, buffer: UnsafeRawBufferPointer, mode: UInt32 = 0o644) throws {
        let directory = parentDirectory(of: path)
        var template = Array("\(directory)/.\(baseName(of: path)).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw FileError.writeFailed(path: path, reason: errorText(errno)) }
        let temporary = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var finished = false
        defer {
            if !finished {
                close(fd)
                unlink(temporary)
            }
        }
        var offset = 0
        while offset < buffer.count {
            let count = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                throw FileError.writeFailed(path: path, reason: errorText(errno))
            }
            offset += count
        }
        guard fchmod(fd, mode_t(mode)) == 0, fsync(fd) == 0 else {
            throw FileError.writeFailed(path: path, reason: errorText(errno))
        }
        finished = true
        guard close(fd) == 0 else {
            let reason = errorText(errno)
            unlink(temporary)
            throw FileError.writeFailed(path: path, reason: reason)
        }
        guard rename(temporary, path) == 0 else {
            let reason = errorText(errno)
            unlink(temporary)
            throw FileError.writeFailed(path: path, reason: reason)
        }
        // Persist the rename itself.
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }

    public static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    public static func baseName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

/// A regular file open for reading, closed when the value goes away. Lets a reader place the
/// bytes where it wants them (a loader reads a model's frame straight into its payload buffer).
public struct ReadableFile: ~Copyable {
    public let path: String
    /// Size in bytes when opened.
    public let size: Int
    private let descriptor: Int32

    /// Opens `path`, refusing directories and files larger than `limit` bytes.
    public init(path: String, limit: Int = 1 << 32) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw FileError.notFound(path: path) }
            throw FileError.cannotOpen(path: path, reason: FileSystem.errorText(code))
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw FileError.readFailed(path: path, reason: FileSystem.errorText(code))
        }
        let size = Int(info.st_size)
        guard (info.st_mode & S_IFMT) != S_IFDIR else {
            close(fd)
            throw FileError.isDirectory(path: path)
        }
        guard size <= limit else {
            close(fd)
            throw FileError.tooLarge(path: path, size: size, limit: limit)
        }
        self.path = path
        self.size = size
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// Reads from byte `offset` until `buffer` is full or the file ends (it may have shrunk since
    /// it was opened); returns the number of bytes read.
    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var done = 0
        while done < buffer.count {
            let count = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if count < 0 {
                if errno == EINTR { continue }
                throw FileError.readFailed(path: path, reason: FileSystem.errorText(errno))
            }
            if count == 0 { break }
            done += count
        }
        return done
    }
}
