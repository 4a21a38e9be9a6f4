import CModelKitKernels
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A raw pointer handed to worker closures. Invariant: every worker writes a disjoint region,
/// and the owner keeps the buffer alive until `concurrentPerform` returns.
struct SendablePointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
}

struct SendableConstPointer<T>: @unchecked Sendable {
    let pointer: UnsafePointer<T>
}

/// Thread count for the training kernels: MODELKIT_THREADS if set, else the online CPUs (max 8).
public enum Parallelism {
    public static let threadCount: Int = {
        if let text = getenv("MODELKIT_THREADS"), let value = Int(String(cString: text)), value >= 1 {
            return min(value, 64)
        }
        return max(1, min(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 8))
    }()

    /// Runs `body(part)` for part in 0..<parts, on the persistent worker pool (`mk_parallel_run`)
    /// when parts > 1; returns when every part is done. Parts may run on any thread in any order.
    static func run(_ parts: Int, _ body: @Sendable (Int) -> Void) {
        if parts <= 1 { body(0); return }
        withoutActuallyEscaping(body) { body in
            // The C pool gets a plain function and a pointer to the closure, which stays alive (on
            // this frame) until mk_parallel_run returns.
            var closure: (Int) -> Void = body
            withUnsafeMutablePointer(to: &closure) { pointer in
                mk_parallel_run(Int32(threadCount), parts, { context, part in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(part)
                }, pointer)
            }
        }
    }
}

/// Kernel paths of the C GEMM.
public enum KernelPath: Int32, CaseIterable, Sendable, CustomStringConvertible {
    case portable = 0
    case avx2 = 1
    case avx512 = 2

    /// The path `Gemm` uses (CPU detection and MODELKIT_KERNELS).
    public static var active: KernelPath { KernelPath(rawValue: mk_kernels_active()) ?? .portable }
    public static var bestSupported: KernelPath { KernelPath(rawValue: mk_kernels_best_supported()) ?? .portable }
    public var isSupported: Bool { rawValue <= KernelPath.bestSupported.rawValue }
    public var description: String { String(cString: mk_kernels_path_name(rawValue)) }
}

/// Row-major SGEMM, C = alpha·op(A)·op(B) + beta·C, split across threads by rows (or by
/// columns when there are few rows). op(A) is m×k, op(B) is k×n.
public enum Gemm {
    /// Work (2·m·n·k) below which one thread does it all: thread hand-off costs ~10 µs.
    static let parallelThreshold = 2_000_000

    public static func multiply(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                                a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                                threads: Int = Parallelism.threadCount, path: KernelPath? = nil) {
        run(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
            beta: beta, c: c, ldc: ldc, bias: nil, relu: false, threads: threads, path: path)
    }

    /// C = op(A)·op(B) + bias (per column; nil for none), then max(C, 0) when `relu`. The bias and
    /// clamp are applied by the C driver to each tile while it is still in cache, so a layer with a
    /// fused activation makes one pass over its output instead of three.
    public static func multiplyBiasReLU(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                        c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>?,
                                        relu: Bool, threads: Int = Parallelism.threadCount,
                                        path: KernelPath? = nil) {
        run(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb, beta: 0,
            c: c, ldc: ldc, bias: bias, relu: relu, threads: threads, path: path)
    }

    @inline(__always)
    static func call(_ path: Int32, _ ta: Int32, _ tb: Int32, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                     _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float,
                     _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ bias: UnsafePointer<Float>?, _ relu: Bool) {
        if bias == nil && !relu {
            mk_sgemm_path(path, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        } else {
            // The fused entry point computes alpha = 1, beta = 0 (all its callers need).
            precondition(alpha == 1 && beta == 0, "bias/relu epilogue needs alpha 1 and beta 0")
            mk_sgemm_bias_relu(path, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, bias, relu ? 1 : 0)
        }
    }

    private static func run(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>?,
                            relu: Bool, threads: Int, path: KernelPath?) {
        let ta: Int32 = transA ? 1 : 0
        let tb: Int32 = transB ? 1 : 0
        let pathCode = (path ?? KernelPath.active).rawValue
        let work = 2 * m * n * k
        let parts = min(threads, max(1, work / parallelThreshold))
        guard parts > 1, m > 0, n > 0 else {
            call(pathCode, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, relu)
            return
        }
        let pa = SendableConstPointer(pointer: a), pb = SendableConstPointer(pointer: b)
        let pc = SendablePointer(pointer: c)
        let pbias = bias.map { SendableConstPointer(pointer: $0) }
        if m >= 2 * n || m >= 48 * parts {
            // Row split, chunks rounded to 12 rows (a multiple of every micro-kernel's MR: 4, 6, 12).
            let chunk = ((m + parts - 1) / parts + 11) / 12 * 12
            Parallelism.run((m + chunk - 1) / chunk) { part in
                let i0 = part * chunk
                let rows = min(chunk, m - i0)
                let aStart = transA ? pa.pointer + i0 : pa.pointer + i0 * lda
                call(pathCode, ta, tb, rows, n, k, alpha, aStart, lda, pb.pointer, ldb, beta,
                     pc.pointer + i0 * ldc, ldc, pbias?.pointer, relu)
            }
        } else {
            // Column split, chunks rounded to 16 columns (NR of the portable and AVX2 kernels; the
            // AVX-512 kernel then may get one half-width edge panel per chunk).
            let chunk = ((n + parts - 1) / parts + 15) / 16 * 16
            Parallelism.run((n + chunk - 1) / chunk) { part in
                let j0 = part * chunk
                let cols = min(chunk, n - j0)
                let bStart = transB ? pb.pointer + j0 * ldb : pb.pointer + j0
                call(pathCode, ta, tb, m, cols, k, alpha, pa.pointer, lda, bStart, ldb, beta,
                     pc.pointer + j0, ldc, pbias.map { $0.pointer + j0 }, relu)
            }
        }
    }
}

/// Runs `body` with the base address of `values`, or with nil when there are none (an optional
/// bias), without copying.
@inline(__always)
func withOptionalBuffer<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
    guard let values else { return try body(nil) }
    return try values.withUnsafeBufferPointer { try body($0.baseAddress) }
}
