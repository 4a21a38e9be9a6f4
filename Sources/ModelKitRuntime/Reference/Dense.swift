import ModelKitCore

extension ReferenceKernels {
    /// Fully connected layer: y = activation(x · Wᵀ + b).
    ///
    /// x [N,K], weight [O,K], bias [O]? -> y [N,O].
    public static func dense(input x: TensorView, weight w: TensorView, bias: TensorView?,
                             activation: FusedActivation, output y: MutableTensorView) {
        let (batch, inFeatures) = (x.shape[0], x.shape[1])
        let outFeatures = w.shape[0]
        for n in 0..<batch {
            for o in 0..<outFeatures {
                var sum: Float = bias?.data[o] ?? 0
                for k in 0..<inFeatures {
                    sum += x.data[n * inFeatures + k] * w.data[o * inFeatures + k]
                }
                y.data[n * outFeatures + o] = activation.apply(sum)
            }
        }
    }
}
