import ModelKitCore

extension ReferenceKernels {
    /// Copies every element unchanged (Flatten, Reshape, Dropout at inference: the row-major
    /// order of the elements does not change, only the shape).
    public static func copy(input x: TensorView, output y: MutableTensorView) {
        for i in 0..<count(y.shape) {
            y.data[i] = x.data[i]
        }
    }

    /// Output axis `i` is input axis `permutation[i]` (ONNX Transpose), any rank.
    public static func transpose(input x: TensorView, permutation: [Int], output y: MutableTensorView) {
        let total = count(y.shape)
        if total == 0 { return }
        let inputStrides = x.shape.strides
        let outDims = y.shape.dims
        // Stride in the input of a step along each output axis.
        let strides = permutation.map { inputStrides[$0] }
        var index = [Int](repeating: 0, count: outDims.count)
        for o in 0..<total {
            var source = 0
            for axis in 0..<outDims.count { source += index[axis] * strides[axis] }
            y.data[o] = x.data[source]
            _ = advance(&index, dims: outDims)
        }
    }

    /// Joins the inputs along `axis` (negative counts from the end), in input order.
    public static func concat(inputs: [TensorView], axis: Int, output y: MutableTensorView) {
        let dims = y.shape.dims
        let axis = axis < 0 ? axis + dims.count : axis
        var outer = 1
        for d in dims[..<axis] { outer *= d }
        var inner = 1
        for d in dims[(axis + 1)...] { inner *= d }

        // For each outer index, the output holds one block from every input in turn; the block of
        // input j is its axis length times `inner` elements.
        var destination = 0
        for o in 0..<outer {
            for x in inputs {
                let block = x.shape[axis] * inner
                for i in 0..<block {
                    y.data[destination] = x.data[o * block + i]
                    destination += 1
                }
            }
        }
    }

    /// Constant padding: `pads` is [begin_0, …, begin_{r-1}, end_0, …, end_{r-1}].
    /// Output cells outside the copied input hold `value`.
    public static func pad(input x: TensorView, pads: [Int], value: Float, output y: MutableTensorView) {
        let total = count(y.shape)
        if total == 0 { return }
        let rank = y.shape.rank
        let inDims = x.shape.dims
        let inStrides = x.shape.strides
        let outDims = y.shape.dims
        var index = [Int](repeating: 0, count: rank)
        for o in 0..<total {
            var source = 0
            var inside = true
            for axis in 0..<rank {
                let i = index[axis] - pads[axis]
                if i < 0 || i >= inDims[axis] {
                    inside = false
                    break
                }
                source += i * inStrides[axis]
            }
            y.data[o] = inside ? x.data[source] : value
            _ = advance(&index, dims: outDims)
        }
    }
}
