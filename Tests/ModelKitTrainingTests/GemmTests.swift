import CModelKitKernels
import ModelKitTestSupport
import Testing
@testable import ModelKitTraining

/// Naive triple loop in Double: the oracle for every optimized path.
func naiveGemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int,
               b: [Float], ldb: Int, beta: Float, c: [Float], ldc: Int) -> [Float] {
    var result = c
    for i in 0..<m {
        for j in 0..<n {
            var sum = 0.0
            for p in 0..<k {
                let av = transA ? a[p * lda + i] : a[i * lda + p]
                let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                sum += Double(av) * Double(bv)
            }
            let old = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
            result[i * ldc + j] = Float(Double(alpha) * sum + old)
        }
    }
    return result
}

struct GemmCase: Sendable, CustomTestStringConvertible {
    var m: Int, n: Int, k: Int
    var transA: Bool, transB: Bool
    var alpha: Float, beta: Float
    var testDescription: String { "\(m)x\(n)x\(k) tA=\(transA) tB=\(transB) a=\(alpha) b=\(beta)" }
}

let gemmCases: [GemmCase] = {
    var rng = RandomGenerator(seed: 7)
    var cases: [GemmCase] = [
        GemmCase(m: 0, n: 5, k: 3, transA: false, transB: false, alpha: 1, beta: 0),
        GemmCase(m: 4, n: 0, k: 3, transA: true, transB: false, alpha: 1, beta: 0),
        GemmCase(m: 3, n: 5, k: 0, transA: false, transB: true, alpha: 1, beta: 0.5),
        GemmCase(m: 1, n: 1, k: 1, transA: false, transB: false, alpha: 1, beta: 0),
        GemmCase(m: 12, n: 32, k: 256, transA: false, transB: false, alpha: 1, beta: 0),
        GemmCase(m: 13, n: 33, k: 257, transA: true, transB: true, alpha: -0.5, beta: 2),
        GemmCase(m: 200, n: 70, k: 300, transA: false, transB: true, alpha: 1, beta: 1),
        GemmCase(m: 70, n: 2100, k: 9, transA: true, transB: false, alpha: 1, beta: 0),
    ]
    for _ in 0..<12 {
        cases.append(GemmCase(m: 1 + rng.nextInt(below: 61), n: 1 + rng.nextInt(below: 75),
                              k: 1 + rng.nextInt(below: 300), transA: rng.nextInt(below: 2) == 1,
                              transB: rng.nextInt(below: 2) == 1, alpha: [1, 0.5, -2][rng.nextInt(below: 3)],
                              beta: [0, 1, -0.25][rng.nextInt(below: 3)]))
    }
    return cases
}()

@Suite struct GemmTests {
    @Test(arguments: KernelPath.allCases)
    func everyPathMatchesNaive(path: KernelPath) {
        for item in gemmCases {
            check(item, path: path, threads: 1)
        }
    }

    @Test func threadedSplitMatchesNaive() {
        // Large enough to cross the parallel threshold in both split directions.
        check(GemmCase(m: 517, n: 64, k: 288, transA: false, transB: true, alpha: 1, beta: 0), path: nil, threads: 2)
        check(GemmCase(m: 64, n: 290, k: 700, transA: true, transB: false, alpha: 1, beta: 1), path: nil, threads: 2)
        check(GemmCase(m: 100, n: 100, k: 300, transA: false, transB: false, alpha: 1, beta: 0), path: nil, threads: 3)
    }

    @Test func betaZeroIgnoresNaNInC() {
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [1, 0, 0, 1]
        var c = [Float](repeating: .nan, count: 4)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    Gemm.multiply(transA: false, transB: false, m: 2, n: 2, k: 2, a: pa.baseAddress!, lda: 2,
                                  b: pb.baseAddress!, ldb: 2, beta: 0, c: pc.baseAddress!, ldc: 2)
                }
            }
        }
        #expect(c == [1, 2, 3, 4])
    }

    @Test func forcedPathIsClampedToTheCPU() {
        let best = mk_kernels_best_supported()
        #expect(mk_kernels_clamp(Int32(MK_KERNELS_AVX512.rawValue)) == best)
        #expect(mk_kernels_clamp(-3) == Int32(MK_KERNELS_PORTABLE.rawValue))
        #expect(KernelPath.active.rawValue <= best)
        #expect(mk_kernels_from_name("portable") == 0 && mk_kernels_from_name("avx2") == 1)
        #expect(mk_kernels_from_name("avx512") == 2)
        #expect(mk_kernels_from_name("AVX2") == -1 && mk_kernels_from_name(nil) == -1)
    }

    @Test func forcedPathsReallyDiffer() {
        // Guards against a dispatch table that maps every path to the same kernel: the portable
        // kernel uses separate multiply and add, the SIMD ones fused multiply-add, so on data
        // chosen to round differently the results differ in the last bits somewhere.
        guard KernelPath.bestSupported != .portable else { return }
        var rng = RandomGenerator(seed: 77)
        let m = 24, n = 32, k = 200
        let a = (0..<(m * k)).map { _ in rng.nextFloat(in: -1, 1) }
        let b = (0..<(k * n)).map { _ in rng.nextFloat(in: -1, 1) }
        func run(_ path: KernelPath) -> [Float] {
            var c = [Float](repeating: 0, count: m * n)
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        Gemm.multiply(transA: false, transB: false, m: m, n: n, k: k, a: pa.baseAddress!, lda: k,
                                      b: pb.baseAddress!, ldb: n, c: pc.baseAddress!, ldc: n, threads: 1, path: path)
                    }
                }
            }
            return c
        }
        #expect(run(.portable) != run(.bestSupported))
    }

    func check(_ item: GemmCase, path: KernelPath?, threads: Int) {
        var rng = RandomGenerator(seed: UInt64(item.m * 1000 + item.n * 10 + item.k))
        // Leading dimensions larger than the logical widths, to exercise strides.
        let aRows = item.transA ? item.k : item.m, aCols = item.transA ? item.m : item.k
        let bRows = item.transB ? item.n : item.k, bCols = item.transB ? item.k : item.n
        let lda = aCols + 3, ldb = bCols + 1, ldc = item.n + 2
        let a = (0..<(max(aRows, 1) * lda)).map { _ in rng.nextFloat(in: -1, 1) }
        let b = (0..<(max(bRows, 1) * ldb)).map { _ in rng.nextFloat(in: -1, 1) }
        var c = (0..<(max(item.m, 1) * ldc)).map { _ in rng.nextFloat(in: -1, 1) }
        let expected = naiveGemm(transA: item.transA, transB: item.transB, m: item.m, n: item.n, k: item.k,
                                 alpha: item.alpha, a: a, lda: lda, b: b, ldb: ldb, beta: item.beta, c: c, ldc: ldc)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    Gemm.multiply(transA: item.transA, transB: item.transB, m: item.m, n: item.n, k: item.k,
                                  alpha: item.alpha, a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                                  beta: item.beta, c: pc.baseAddress!, ldc: ldc, threads: threads, path: path)
                }
            }
        }
        var worst: Float = 0
        for i in 0..<c.count {
            let column = i % ldc
            if column >= item.n || i / ldc >= item.m {
                // Padding columns of C must be untouched.
                #expect(c[i] == expected[i], "padding at \(i) changed for \(item.testDescription)")
                continue
            }
            let tolerance = 1e-5 * Float(max(item.k, 1)).squareRoot() * 4
            worst = max(worst, abs(c[i] - expected[i]) / (1 + abs(expected[i])) / tolerance)
        }
        #expect(worst <= 1, "\(item.testDescription) path \(path?.description ?? "active"): error \(worst)× tolerance")
    }

    /// AddressSanitizer replaces malloc, so glibc's mallopt tuning cannot apply under it
    /// (Tools/sanitize); that says nothing about the code under test.
    @Test(.disabled(if: addressSanitizerIsActive, "ASan replaces glibc's allocator"))
    func allocatorTuningAppliesOnGlibc() {
        #if canImport(Glibc)
        #expect(TrainingMemory.retainFreedMemory())
        #endif
    }
}

