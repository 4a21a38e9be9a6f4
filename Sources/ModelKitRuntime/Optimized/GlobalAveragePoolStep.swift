import ModelKitCore

/// Float GlobalAveragePool over NHWC images with sequential reads. The reference walks each
/// channel's pixels with a stride of C floats (MobileNetV2's 7x7x1280 head: 1280 strided passes);
/// here every pixel's C values are added to per-channel Double sums, pixel by pixel, which is the
/// reference's order of additions per channel, so the results are identical to it.
/// Owns its sums: a plan runs on one thread at a time.
final class GlobalAveragePoolStep: @unchecked Sendable {
    let input: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let batch: Int
    let pixels: Int
    let channels: Int
    private let sums: UnsafeMutablePointer<Double>

    init(input: TensorView, output: MutableTensorView) {
        self.input = input.data
        self.output = output.data
        batch = input.shape[0]
        pixels = input.shape[1] * input.shape[2]
        channels = input.shape[3]
        sums = .allocate(capacity: max(channels, 1))
    }

    deinit { sums.deallocate() }

    func run() {
        let count = Double(pixels)
        for image in 0..<batch {
            sums.update(repeating: 0, count: channels)
            var pixel = input + image * pixels * channels
            for _ in 0..<pixels {
                for channel in 0..<channels { sums[channel] += Double(pixel[channel]) }
                pixel += channels
            }
            let row = output + image * channels
            for channel in 0..<channels { row[channel] = Float(sums[channel] / count) }
        }
    }
}
