import CModelKitKernels
import Testing

/// The int8 GEMM of CModelKitKernels: every dispatch path equals a plain triple loop, exactly.
@Suite("int8 GEMM paths")
struct Int8GemmTests {
    static func naive(_ m: Int, _ n: Int, _ k: Int, _ a: [Int8], _ b: [Int8]) -> [Int32] {
        var c = [Int32](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum: Int32 = 0
                for p in 0..<k { sum += Int32(a[i * k + p]) * Int32(b[j * k + p]) }
                c[i * n + j] = sum
            }
        }
        return c
    }

    @Test(arguments: [(1, 1, 1), (2, 4, 16), (3, 5, 17), (7, 9, 33), (64, 32, 288), (5, 130, 1), (13, 3, 1000), (0, 4, 8)])
    func everyPathIsExact(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &+ UInt64(m * 1000 + n * 10 + k)
        func code() -> Int8 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Int8(truncatingIfNeeded: state >> 32)  // the full range, -128 included
        }
        let a = (0..<(m * k)).map { _ in code() }
        let b = (0..<(n * k)).map { _ in code() }
        let expected = Self.naive(m, n, k, a, b)
        for path in [Int32(MK_KERNELS_PORTABLE.rawValue), Int32(MK_KERNELS_AVX2.rawValue)] {
            var c = [Int32](repeating: -7, count: max(m * n, 1))
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        mk_igemm_path(path, m, n, k, pa.baseAddress, k, pb.baseAddress, k, pc.baseAddress, n)
                    }
                }
            }
            #expect(Array(c.prefix(m * n)) == expected, "path \(path) \(m)x\(n)x\(k)")
        }
    }
}
