import ModelKitCore

/// int8 Concat as one memory copy per input block (the reference copies byte by byte); the
/// quantizer gives every input the output's parameters, so no requantization is needed.
enum Int8Concat {
    static func run(inputs: [Int8View], axis: Int, output y: MutableInt8View) {
        let dims = y.shape.dims
        let axis = axis < 0 ? axis + dims.count : axis
        let outer = dims[..<axis].reduce(1, *)
        let inner = dims[(axis + 1)...].reduce(1, *)
        var destination = y.data
        for o in 0..<outer {
            for x in inputs {
                let block = x.shape[axis] * inner
                destination.update(from: x.data + o * block, count: block)
                destination += block
            }
        }
    }
}
