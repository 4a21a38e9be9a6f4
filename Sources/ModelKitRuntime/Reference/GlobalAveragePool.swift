import ModelKitCore

extension ReferenceKernels {
    /// Mean over the spatial axes: x [N,H,W,C] -> y [N,1,1,C]. Sums in Double.
    public static func globalAveragePool(input x: TensorView, output y: MutableTensorView) {
        let (batch, height, width, channels) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        for n in 0..<batch {
            for c in 0..<channels {
                var sum: Double = 0
                for iy in 0..<height {
                    for ix in 0..<width {
                        sum += Double(x.data[((n * height + iy) * width + ix) * channels + c])
                    }
                }
                y.data[n * channels + c] = Float(sum / Double(height * width))
            }
        }
    }
}
