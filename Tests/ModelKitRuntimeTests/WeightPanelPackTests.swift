import CModelKitKernels
import ModelKitTestSupport
import Testing

/// mk_pack_weight_panels and mk_pack_int8_pair_panels on every dispatch path against plain loops,
/// exactly: full and partial panels (n around multiples of 8 and 16), depths with and without a
/// tail past the vector step (and odd depths for the int8 pairs), a row stride larger than the depth.
@Suite("weight panel packing")
struct WeightPanelPackTests {
    @Test(arguments: [16, 32])
    func matchesPlainLoop(width: Int) {
        var random = SplitMix64(seed: 0x5EED + UInt64(width))
        for (n, k) in [(1, 1), (7, 9), (8, 8), (10, 128), (16, 16), (17, 23), (24, 7), (32, 288), (45, 64), (64, 3)] {
            let ldw = k + 3
            let w = (0..<(n * ldw)).map { _ in Float(random.next() % 2001) - 1000 }
            let panels = (n + width - 1) / width
            var expected = [Float](repeating: 0, count: panels * width * k)
            for j in 0..<n {
                for p in 0..<k { expected[(j / width) * width * k + p * width + j % width] = w[j * ldw + p] }
            }
            for path in KernelPathTests.paths {
                var packed = [Float](repeating: .nan, count: expected.count)
                mk_pack_weight_panels(path, n, k, w, ldw, width, &packed)
                #expect(packed == expected, "path \(path) n \(n) k \(k) width \(width)")
            }
        }
    }

    @Test(arguments: [16, 32])
    func int8PairsMatchPlainLoop(width: Int) {
        var random = SplitMix64(seed: 0x1E8 + UInt64(width))
        for (n, k) in [(1, 1), (7, 9), (8, 16), (10, 33), (16, 15), (17, 48), (24, 7), (32, 288), (45, 64), (64, 3)] {
            let ldb = k + 5
            let b = (0..<(n * ldb)).map { _ in Int8(truncatingIfNeeded: random.next()) }
            let pairs = (k + 1) / 2
            let panels = (n + width - 1) / width
            var expected = [Int16](repeating: 0, count: panels * width * 2 * pairs)
            for j in 0..<n {
                for p in 0..<k {
                    expected[(j / width) * width * 2 * pairs + ((p / 2) * width + j % width) * 2 + p % 2] = Int16(b[j * ldb + p])
                }
            }
            for path in KernelPathTests.paths {
                var packed = [Int16](repeating: 0x5A5A, count: expected.count)
                mk_pack_int8_pair_panels(path, n, k, b, ldb, width, &packed)
                #expect(packed == expected, "path \(path) n \(n) k \(k) width \(width)")
            }
        }
    }
}
