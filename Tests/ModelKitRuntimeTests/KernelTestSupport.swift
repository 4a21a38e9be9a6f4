import ModelKitCore
import ModelKitRuntime

/// Float data with its shape, owned by a test.
struct HostTensor: Sendable, Equatable {
    var shape: Shape
    var data: [Float]

    init(_ shape: Shape, _ data: [Float]) {
        precondition(shape.elementCount == data.count, "\(shape) needs \(shape.elementCount ?? -1) values, got \(data.count)")
        self.shape = shape
        self.data = data
    }
}

/// Runs `operation` through `ReferenceKernels.run` on copies of `inputs` (nil = omitted optional
/// input). The output starts as NaN so an element the kernel forgets to write cannot pass.
func runReference(_ operation: Operation, _ inputs: [HostTensor?], outputShape: Shape) -> [Float] {
    let buffers: [UnsafeMutableBufferPointer<Float>?] = inputs.map { tensor in
        guard let tensor else { return nil }
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(tensor.data.count, 1))
        _ = buffer.initialize(from: tensor.data)
        return buffer
    }
    defer { for case let buffer? in buffers { buffer.deallocate() } }
    let views: [TensorView?] = zip(inputs, buffers).map { tensor, buffer in
        guard let tensor, let buffer else { return nil }
        return TensorView(UnsafePointer(buffer.baseAddress!), tensor.shape)
    }
    var output = [Float](repeating: .nan, count: outputShape.elementCount!)
    output.withUnsafeMutableBufferPointer { out in
        // A zero-size output still needs a valid pointer for the view.
        var placeholder: Float = .nan
        withUnsafeMutablePointer(to: &placeholder) { fallback in
            ReferenceKernels.run(operation, inputs: views,
                                 output: MutableTensorView(out.baseAddress ?? fallback, outputShape))
        }
    }
    return output
}

/// Indices where `actual` and `expected` differ by more than abs + rel·|expected| (NaN never matches).
func mismatches(_ actual: [Float], _ expected: [Float], absolute: Float = 1e-5, relative: Float = 1e-5) -> [Int] {
    precondition(actual.count == expected.count)
    return actual.indices.filter { i in
        !(abs(actual[i] - expected[i]) <= absolute + relative * abs(expected[i]))
    }
}

extension SessionOptions {
    /// `threads` workers that split every layer big enough to split, however small, so tests
    /// exercise the parallel paths (the default leaves layers under 64K multiply-adds on one thread).
    static func splittingEveryLayer(threads: Int) -> SessionOptions {
        var options = SessionOptions(threads: threads)
        options.parallelMinimumWork = 0
        return options
    }
}
