import ModelKitCore

extension ReferenceKernels {
    /// activation(a + b) with numpy broadcasting.
    public static func add(_ a: TensorView, _ b: TensorView, activation: FusedActivation, output y: MutableTensorView) {
        broadcast(a, b, output: y) { activation.apply($0 + $1) }
    }

    /// a · b with numpy broadcasting.
    public static func mul(_ a: TensorView, _ b: TensorView, output y: MutableTensorView) {
        broadcast(a, b, output: y) { $0 * $1 }
    }

    /// Applies `combine` to every output element. Shapes are aligned at the last axis; a missing
    /// or size-1 input axis repeats its single element along the output axis (numpy rules).
    private static func broadcast(_ a: TensorView, _ b: TensorView, output y: MutableTensorView,
                                  combine: (Float, Float) -> Float) {
        let total = count(y.shape)
        if total == 0 { return }
        let outDims = y.shape.dims
        let aStrides = broadcastStrides(a.shape, rank: outDims.count)
        let bStrides = broadcastStrides(b.shape, rank: outDims.count)
        var index = [Int](repeating: 0, count: outDims.count)
        for o in 0..<total {
            var aOffset = 0
            var bOffset = 0
            for axis in 0..<outDims.count {
                aOffset += index[axis] * aStrides[axis]
                bOffset += index[axis] * bStrides[axis]
            }
            y.data[o] = combine(a.data[aOffset], b.data[bOffset])
            _ = advance(&index, dims: outDims)
        }
    }

    /// Strides of `shape` right-aligned to `rank` output axes, 0 on broadcast (missing or size-1) axes.
    static func broadcastStrides(_ shape: Shape, rank: Int) -> [Int] {
        let own = shape.strides
        let offset = rank - shape.rank
        return (0..<rank).map { axis in
            let ownAxis = axis - offset
            if ownAxis < 0 || shape[ownAxis] == 1 { return 0 }
            return own[ownAxis]
        }
    }
}
