import CModelKitKernels
import ModelKitCore
@testable import ModelKitRuntime
import Testing

/// The C float → int8 quantization on each path, bit-exact with the reference: random values over
/// and beyond the int8 range, exact halves (rounded away from zero), ±0, ±infinity and NaN, and a
/// count that leaves a scalar tail after the 8-wide loop.
@Suite("int8 quantize kernel")
struct QuantizeKernelTests {
    @Test(arguments: [(Float(0.05), Int32(-3)), (0.5, 0), (1.0, 17), (0.0123, -128), (3e-3, 127)])
    func matchesReferenceBitExact(scale: Float, zeroPoint: Int32) {
        var random = Int8Random(seed: UInt64(scale * 1e4) &+ UInt64(bitPattern: Int64(zeroPoint)))
        var values = random.floats(1000, scale: 140 * scale)
        // Exact halves of the scale on both sides of zero, and the special values.
        values += (-12...12).map { Float($0) * 0.5 * scale }
        values += [0, -0, .infinity, -.infinity, .nan, -.nan, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                   .leastNonzeroMagnitude, 1e30, -1e30]
        let count = values.count
        #expect(count % 8 != 0)
        var expected = [Int8](repeating: 0, count: count)
        values.withUnsafeBufferPointer { x in
            expected.withUnsafeMutableBufferPointer { y in
                Int8ReferenceKernels.quantize(input: TensorView(x.baseAddress!, [count]),
                                              output: MutableInt8View(y.baseAddress!, [count], scale: scale, zeroPoint: zeroPoint))
            }
        }
        #expect(Set(expected).count > 100, "degenerate reference output")
        for path in [MK_KERNELS_PORTABLE, MK_KERNELS_AVX2] {
            var actual = [Int8](repeating: 0x55, count: count)
            values.withUnsafeBufferPointer { x in
                actual.withUnsafeMutableBufferPointer { y in
                    Int8Step.quantize(TensorView(x.baseAddress!, [count]),
                                      MutableInt8View(y.baseAddress!, [count], scale: scale, zeroPoint: zeroPoint),
                                      path: Int32(path.rawValue))
                }
            }
            let wrong = actual.indices.filter { actual[$0] != expected[$0] }
            #expect(wrong.isEmpty, "path \(path.rawValue): \(wrong.prefix(5).map { (values[$0], actual[$0], expected[$0]) })")
        }
    }
}
