import ModelKitCore

extension Int8ReferenceKernels {
    /// Concatenation of int8 values with identical parameters: a byte copy.
    public static func concat(inputs: [Int8View], axis: Int, output y: MutableInt8View) {
        let dims = y.shape.dims
        let axis = axis < 0 ? axis + dims.count : axis
        var outer = 1
        for d in dims[..<axis] { outer *= d }
        var inner = 1
        for d in dims[(axis + 1)...] { inner *= d }
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
}
