import ModelKitCore
import ModelKitRuntime
import Testing

// Small cases worked out by hand, independent of the generated goldens.

@Suite("Reference kernels, hand-computed")
struct ReferenceKernelTests {
    /// 3x3 image 1...9 (one channel), 3x3 kernel of ones, SAME padding: each output is the sum of
    /// the in-bounds 3x3 neighbourhood.
    @Test func conv3x3OnesSamePadding() {
        let image = HostTensor([1, 3, 3, 1], (1...9).map(Float.init))
        let ones = HostTensor([1, 3, 3, 1], [Float](repeating: 1, count: 9))
        let op = Operation.conv2D(Conv2DAttributes(padding: .same))
        let y = runReference(op, [image, ones, nil], outputShape: [1, 3, 3, 1])
        #expect(y == [12, 21, 16,
                      27, 45, 33,
                      24, 39, 28])
    }

    /// Same sums with bias -20 and a fused ReLU.
    @Test func conv3x3BiasAndRelu() {
        let image = HostTensor([1, 3, 3, 1], (1...9).map(Float.init))
        let ones = HostTensor([1, 3, 3, 1], [Float](repeating: 1, count: 9))
        let bias = HostTensor([1], [-20])
        let op = Operation.conv2D(Conv2DAttributes(padding: .same, activation: .relu))
        let y = runReference(op, [image, ones, bias], outputShape: [1, 3, 3, 1])
        #expect(y == [0, 1, 0,
                      7, 25, 13,
                      4, 19, 8])
    }

    /// Horizontal difference kernel [1, 0, -1] on a 4x4 ramp x = 4·row + col, stride 2, valid:
    /// every output is x[r][c] - x[r][c+2] = -2.
    @Test func convStride2Difference() {
        let ramp = HostTensor([1, 4, 4, 1], (0..<16).map(Float.init))
        let kernel = HostTensor([1, 1, 3, 1], [1, 0, -1])
        let op = Operation.conv2D(Conv2DAttributes(strides: (2, 2)))
        // height: (4 - 1)/2 + 1 = 2, width: (4 - 3)/2 + 1 = 1
        let y = runReference(op, [ramp, kernel], outputShape: [1, 2, 1, 1])
        #expect(y == [-2, -2])
    }

    /// Depthwise (groups = C = 2) with multiplier 1: channel 0 sees weight 2, channel 1 weight -1.
    @Test func depthwiseKeepsChannelsApart() {
        // Pixels (1, 10), (2, 20) in a 1x2 image.
        let x = HostTensor([1, 1, 2, 2], [1, 10, 2, 20])
        let w = HostTensor([2, 1, 2, 1], [2, 2, -1, -1])
        let op = Operation.conv2D(Conv2DAttributes(groups: 2))
        let y = runReference(op, [x, w], outputShape: [1, 1, 1, 2])
        #expect(y == [2 * (1 + 2), -(10 + 20)])
    }

    @Test func denseIsXTimesWTransposedPlusBias() {
        let x = HostTensor([1, 2], [1, 2])
        let w = HostTensor([3, 2], [1, 0,
                                    0, 1,
                                    1, 1])
        let b = HostTensor([3], [0.5, 0, -4])
        let y = runReference(.dense(activation: .relu), [x, w, b], outputShape: [1, 3])
        #expect(y == [1.5, 2, 0])
    }

    /// 2x2 input, 2x2 window, stride 1, one row of padding on top and one column on the left:
    /// the first window holds only x[0][0] and three padded cells.
    @Test(arguments: [false, true])
    func averagePoolCountIncludePad(_ include: Bool) {
        let x = HostTensor([1, 2, 2, 1], [1, 2, 3, 4])
        let attributes = Pool2DAttributes(kernel: (2, 2), strides: (1, 1),
                                          padding: .explicit(top: 1, left: 1, bottom: 0, right: 0),
                                          countIncludePad: include)
        let y = runReference(.averagePool2D(attributes), [x], outputShape: [1, 2, 2, 1])
        let expected: [Float] = include
            ? [1.0 / 4, 3.0 / 4, 4.0 / 4, 10.0 / 4]
            : [1, 1.5, 2, 2.5]
        #expect(y == expected)
    }

    @Test func maxPoolIgnoresPaddingForNegativeInputs() {
        let x = HostTensor([1, 2, 2, 1], [-5, -6, -7, -8])
        let attributes = Pool2DAttributes(kernel: (2, 2), strides: (1, 1),
                                          padding: .explicit(top: 1, left: 1, bottom: 0, right: 0))
        let y = runReference(.maxPool2D(attributes), [x], outputShape: [1, 2, 2, 1])
        #expect(y == [-5, -5, -5, -5])
    }

    @Test func softmaxOfLargeLogitsStaysFinite() {
        let x = HostTensor([3, 3], [1000, 1001, 1002,
                                    -1000, -999, -998,
                                    3.0e38, 3.0e38, -3.0e38])
        let y = runReference(.softmax(axis: -1), [x], outputShape: [3, 3])
        #expect(y.allSatisfy { $0.isFinite })
        // softmax([0, 1, 2]) for the first two rows; the third splits evenly over the two maxima.
        let expected: [Float] = [0.09003057, 0.24472847, 0.66524096,
                                 0.09003057, 0.24472847, 0.66524096,
                                 0.5, 0.5, 0]
        #expect(mismatches(y, expected, absolute: 1e-6, relative: 1e-6).isEmpty, "\(y)")
    }

    @Test func softmaxOnAxis0NormalizesColumns() {
        let x = HostTensor([2, 2], [0, 5, 0, 5])
        let y = runReference(.softmax(axis: 0), [x], outputShape: [2, 2])
        #expect(y == [0.5, 0.5, 0.5, 0.5])
    }

    @Test func sigmoidAndTanhSaturateWithoutNaN() {
        let x = HostTensor([4], [-200, -1000, 100, 0])
        let sigmoid = runReference(.sigmoid, [x], outputShape: [4])
        #expect(sigmoid == [0, 0, 1, 0.5])
        let tanh = runReference(.tanh, [x], outputShape: [4])
        #expect(tanh == [-1, -1, 1, 0])
    }

    @Test func hardSwishPieces() {
        let x = HostTensor([5], [-4, -3, 0, 1.5, 4])
        let y = runReference(.hardSwish, [x], outputShape: [5])
        // x <= -3: 0; x >= 3: x; between: x(x+3)/6.
        #expect(y == [0, 0, 0, 1.5 * 4.5 / 6, 4])
    }

    @Test func addBroadcastsColumnAgainstRowWithFusedClip() {
        let column = HostTensor([2, 1], [10, 20])
        let row = HostTensor([3], [1, 2, 3])
        let y = runReference(.add(activation: .clip(min: 0, max: 22)), [column, row], outputShape: [2, 3])
        #expect(y == [11, 12, 13,
                      21, 22, 22])
    }

    @Test func transposeAndConcatAndPad() {
        let x = HostTensor([2, 3], [1, 2, 3,
                                    4, 5, 6])
        #expect(runReference(.transpose(permutation: [1, 0]), [x], outputShape: [3, 2]) == [1, 4, 2, 5, 3, 6])

        let z = HostTensor([2, 1], [7, 8])
        #expect(runReference(.concat(axis: 1), [x, z], outputShape: [2, 4]) == [1, 2, 3, 7,
                                                                                4, 5, 6, 8])
        #expect(runReference(.concat(axis: 0), [x, x], outputShape: [4, 3]) == [1, 2, 3, 4, 5, 6,
                                                                                1, 2, 3, 4, 5, 6])

        // One row before, one column after.
        #expect(runReference(.pad(pads: [1, 0, 0, 1], value: -1), [x], outputShape: [3, 4])
                == [-1, -1, -1, -1,
                    1, 2, 3, -1,
                    4, 5, 6, -1])
    }

    @Test func batchNormalizationPerLastAxisChannel() {
        // Two channels: channel 0 has mean 1, variance 4; channel 1 mean -1, variance 0.25.
        let x = HostTensor([2, 2], [3, 0, -1, -1])
        let scale = HostTensor([2], [2, 1])
        let bias = HostTensor([2], [0, 10])
        let mean = HostTensor([2], [1, -1])
        let variance = HostTensor([2], [4, 0.25])
        let y = runReference(.batchNormalization(epsilon: 0), [x, scale, bias, mean, variance], outputShape: [2, 2])
        // (x - mean) / sqrt(variance) * scale + bias
        let expected: [Float] = [(3 - 1) / 2 * 2, (0 + 1) / 0.5 * 1 + 10,
                                 (-1 - 1) / 2 * 2, (-1 + 1) / 0.5 * 1 + 10]
        #expect(y == expected)
    }

    @Test func globalAveragePoolAndCopies() {
        let x = HostTensor([1, 2, 2, 2], [1, 10, 2, 20, 3, 30, 4, 40])
        #expect(runReference(.globalAveragePool, [x], outputShape: [1, 1, 1, 2]) == [2.5, 25])
        #expect(runReference(.flatten(axis: 1), [x], outputShape: [1, 8]) == x.data)
        #expect(runReference(.reshape(shape: [0, -1]), [x], outputShape: [1, 8]) == x.data)
        #expect(runReference(.dropout(rate: 0.5), [x], outputShape: x.shape) == x.data)
    }
}
