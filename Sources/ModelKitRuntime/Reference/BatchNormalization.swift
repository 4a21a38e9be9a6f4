import ModelKitCore

extension ReferenceKernels {
    /// Inference batch normalization over the last (channel) axis:
    /// y = (x - mean) / sqrt(variance + epsilon) · scale + bias.
    public static func batchNormalization(input x: TensorView, scale: TensorView, bias: TensorView,
                                          mean: TensorView, variance: TensorView, epsilon: Float,
                                          output y: MutableTensorView) {
        let channels = x.shape[x.shape.rank - 1]
        let total = count(x.shape)
        for i in 0..<total {
            let c = i % channels
            let normalized = (x.data[i] - mean.data[c]) / (variance.data[c] + epsilon).squareRoot()
            y.data[i] = normalized * scale.data[c] + bias.data[c]
        }
    }
}
