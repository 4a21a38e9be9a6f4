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
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw FileError.notFound(path: path) }
            throw FileError.cannotOpen(path: path, reason: errorText(code))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError.readFailed(path: path, reason: errorText(errno)) }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw FileError.isDirectory(path: path) }
        let size = Int(info.st_size)
        guard size <= limit else { throw FileError.tooLarge(path: path, size: size, limit: limit) }
        var offset = 0
        // Uninitialised: every byte kept is written by read(2), so zero-filling first is wasted work.
        return try [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            defer { initialized = offset }
            while offset < size {
                let count = read(fd, buffer.baseAddress! + offset, size - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw FileError.readFailed(path: path, reason: errorText(errno))
                }
                if count == 0 { break }  // The file shrank while we read it.
                offset += count
            }
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
