/// Output type and shape of each op, with every precondition the kernels rely on checked here,
/// so kernels can trust their inputs.
public enum ShapeInference {
    /// - Parameter outputQuantization: the stored parameters of the output (int8 outputs need them).
    public static func infer(node: Node, inputs: [ValueInfo?], outputQuantization: QuantizationParameters? = nil)
        throws -> ValueInfo {
        let op = node.operation
        func mismatch(_ reason: String) -> GraphError {
            GraphError.shapeMismatch(node: node.name, op: op.name, reason: reason)
        }
        func attribute(_ reason: String) -> GraphError {
            GraphError.invalidAttribute(node: node.name, op: op.name, reason: reason)
        }
        func required(_ position: Int) throws -> ValueInfo {
            guard position < inputs.count, let info = inputs[position] else {
                throw mismatch("input \(position) is missing")
            }
            return info
        }
        let x = try required(0)
        let (dtype, quantization) = try QuantizedTyping.output(node: node, inputs: inputs,
                                                               outputQuantization: outputQuantization)
        func output(_ dims: [Int]) -> ValueInfo {
            ValueInfo(name: node.outputs[0], dtype: dtype, shape: Shape(dims), quantization: quantization)
        }
        func normalizedAxis(_ axis: Int, rank: Int, inclusive: Bool = false) throws -> Int {
            let upper = inclusive ? rank : rank - 1
            let value = axis < 0 ? axis + rank : axis
            guard value >= 0, value <= upper else { throw attribute("axis \(axis) is out of range for rank \(rank)") }
            return value
        }
        func spatialOutput(size: Int, kernel: Int, stride: Int, dilation: Int, padBefore: Int, padAfter: Int,
                           axisName: String) throws -> Int {
            let effective = (kernel - 1) * dilation + 1
            let padded = size + padBefore + padAfter
            guard padded >= effective else {
                throw mismatch("\(axisName) \(size) (padded \(padded)) is smaller than the window \(effective)")
            }
            return (padded - effective) / stride + 1
        }
        func checkActivation(_ activation: FusedActivation) throws {
            if case .clip(let lo, let hi) = activation, !(lo <= hi) {
                throw attribute("fused clip has min \(lo) > max \(hi)")
            }
        }

        switch op {
        case .conv2D(let a):
            let w = try required(1)
            guard x.shape.rank == 4 else { throw mismatch("input must be [N,H,W,C], got \(x.shape)") }
            guard w.shape.rank == 4 else { throw mismatch("weight must be [O,kH,kW,C/groups], got \(w.shape)") }
            guard a.strideH >= 1, a.strideW >= 1 else { throw attribute("strides must be at least 1") }
            guard a.dilationH >= 1, a.dilationW >= 1 else { throw attribute("dilations must be at least 1") }
            guard a.groups >= 1 else { throw attribute("groups must be at least 1") }
            try checkActivation(a.activation)
            let (n, h, wd, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let (o, kh, kw, cg) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
            guard kh >= 1, kw >= 1, o >= 1 else { throw mismatch("weight shape \(w.shape) is empty") }
            guard c % a.groups == 0, o % a.groups == 0 else {
                throw mismatch("channels in \(c) and out \(o) must be divisible by groups \(a.groups)")
            }
            guard cg == c / a.groups else {
                throw mismatch("weight \(w.shape) expects \(cg) channels per group, input \(x.shape) has \(c / a.groups)")
            }
            if inputs.count > 2, let bias = inputs[2] {
                guard bias.shape.dims == [o] else { throw mismatch("bias \(bias.shape) must be [\(o)]") }
            }
            let pad = try resolvedPadding(a.padding, height: h, width: wd, kernel: (kh, kw),
                                          stride: (a.strideH, a.strideW), dilation: (a.dilationH, a.dilationW),
                                          attribute: attribute)
            let oh = try spatialOutput(size: h, kernel: kh, stride: a.strideH, dilation: a.dilationH,
                                       padBefore: pad.top, padAfter: pad.bottom, axisName: "height")
            let ow = try spatialOutput(size: wd, kernel: kw, stride: a.strideW, dilation: a.dilationW,
                                       padBefore: pad.left, padAfter: pad.right, axisName: "width")
            return output([n, oh, ow, o])

        case .dense(let activation):
            let w = try required(1)
            try checkActivation(activation)
            guard x.shape.rank == 2 else { throw mismatch("input must be [N,K], got \(x.shape)") }
            guard w.shape.rank == 2, w.shape[1] == x.shape[1] else {
                throw mismatch("weight \(w.shape) must be [O,\(x.shape[1])] for input \(x.shape)")
            }
            if inputs.count > 2, let bias = inputs[2] {
                guard bias.shape.dims == [w.shape[0]] else { throw mismatch("bias \(bias.shape) must be [\(w.shape[0])]") }
            }
            return output([x.shape[0], w.shape[0]])

        case .maxPool2D(let a), .averagePool2D(let a):
            guard x.shape.rank == 4 else { throw mismatch("input must be [N,H,W,C], got \(x.shape)") }
            guard a.kernelH >= 1, a.kernelW >= 1 else { throw attribute("kernel must be at least 1x1") }
            guard a.strideH >= 1, a.strideW >= 1 else { throw attribute("strides must be at least 1") }
            let pad = try resolvedPadding(a.padding, height: x.shape[1], width: x.shape[2], kernel: (a.kernelH, a.kernelW),
                                          stride: (a.strideH, a.strideW), dilation: (1, 1), attribute: attribute)
            // A window made only of padding has no defined max or mean.
            guard pad.top < a.kernelH, pad.bottom < a.kernelH, pad.left < a.kernelW, pad.right < a.kernelW else {
                throw attribute("padding must be smaller than the kernel")
            }
            let oh = try spatialOutput(size: x.shape[1], kernel: a.kernelH, stride: a.strideH, dilation: 1,
                                       padBefore: pad.top, padAfter: pad.bottom, axisName: "height")
            let ow = try spatialOutput(size: x.shape[2], kernel: a.kernelW, stride: a.strideW, dilation: 1,
                                       padBefore: pad.left, padAfter: pad.right, axisName: "width")
            return output([x.shape[0], oh, ow, x.shape[3]])

        case .globalAveragePool:
            guard x.shape.rank == 4 else { throw mismatch("input must be [N,H,W,C], got \(x.shape)") }
            guard x.shape[1] >= 1, x.shape[2] >= 1 else { throw mismatch("input \(x.shape) has no spatial extent") }
            return output([x.shape[0], 1, 1, x.shape[3]])

        case .relu, .sigmoid, .tanh, .hardSwish, .dropout, .quantizeLinear, .dequantizeLinear:
            return output(x.shape.dims)

        case .clip(let lo, let hi):
            guard lo <= hi else { throw attribute("min \(lo) > max \(hi)") }
            return output(x.shape.dims)

        case .leakyRelu(let alpha):
            guard alpha.isFinite else { throw attribute("alpha must be finite") }
            return output(x.shape.dims)

        case .softmax(let axis):
            _ = try normalizedAxis(axis, rank: x.shape.rank)
            return output(x.shape.dims)

        case .flatten(let axis):
            let split = try normalizedAxis(axis, rank: x.shape.rank, inclusive: true)
            guard let outer = Shape.checkedProduct(x.shape.dims[..<split]),
                  let inner = Shape.checkedProduct(x.shape.dims[split...]) else {
                throw mismatch("size of \(x.shape) overflows")
            }
            return output([outer, inner])

        case .reshape(let target):
            guard let total = x.shape.elementCount else { throw mismatch("size of \(x.shape) overflows") }
            var dims = target
            var inferred: Int?
            for (axis, dim) in target.enumerated() {
                switch dim {
                case 0:
                    guard axis < x.shape.rank else { throw attribute("0 at axis \(axis) copies a dimension \(x.shape) lacks") }
                    dims[axis] = x.shape[axis]
                case -1:
                    guard inferred == nil else { throw attribute("more than one -1 in \(target)") }
                    inferred = axis
                case let d where d < -1:
                    throw attribute("negative dimension \(d) in \(target)")
                default:
                    break
                }
            }
            if let axis = inferred {
                var known = dims
                known[axis] = 1
                guard let partial = Shape.checkedProduct(known), partial > 0, total % partial == 0 else {
                    throw mismatch("cannot reshape \(x.shape) to \(Shape(target))")
                }
                dims[axis] = total / partial
            }
            guard Shape.checkedProduct(dims) == total else {
                throw mismatch("cannot reshape \(x.shape) (\(total) elements) to \(Shape(target))")
            }
            return output(dims)

        case .transpose(let permutation):
            guard permutation.count == x.shape.rank,
                  permutation.sorted() == Array(0..<x.shape.rank) else {
                throw attribute("\(permutation) is not a permutation of the \(x.shape.rank) axes of \(x.shape)")
            }
            return output(permutation.map { x.shape[$0] })

        case .add(let activation):
            try checkActivation(activation)
            let y = try required(1)
            return output(try broadcast(x.shape, y.shape, mismatch: mismatch))

        case .mul:
            let y = try required(1)
            return output(try broadcast(x.shape, y.shape, mismatch: mismatch))

        case .concat(let axis):
            let normalized = try normalizedAxis(axis, rank: x.shape.rank)
            var dims = x.shape.dims
            var total = 0
            for position in inputs.indices {
                let info = try required(position)
                guard info.shape.rank == x.shape.rank else {
                    throw mismatch("input \(position) \(info.shape) has a different rank than \(x.shape)")
                }
                for axis in 0..<x.shape.rank where axis != normalized && info.shape[axis] != x.shape[axis] {
                    throw mismatch("input \(position) \(info.shape) differs from \(x.shape) outside axis \(normalized)")
                }
                let (sum, overflow) = total.addingReportingOverflow(info.shape[normalized])
                guard !overflow else { throw mismatch("concatenated size overflows") }
                total = sum
            }
            dims[normalized] = total
            return output(dims)

        case .pad(let pads, let value):
            let rank = x.shape.rank
            guard pads.count == 2 * rank else { throw attribute("pads has \(pads.count) values, expected \(2 * rank)") }
            guard pads.allSatisfy({ $0 >= 0 && $0 <= (1 << 24) }) else {
                throw attribute("pads \(pads) must be between 0 and 2^24")
            }
            guard value.isFinite else { throw attribute("pad value must be finite") }
            return output((0..<rank).map { x.shape[$0] + pads[$0] + pads[$0 + rank] })

        case .batchNormalization(let epsilon):
            guard epsilon >= 0, epsilon.isFinite else { throw attribute("epsilon \(epsilon) must be a finite value >= 0") }
            guard x.shape.rank >= 2 else { throw mismatch("input must have a channel axis, got \(x.shape)") }
            let channels = x.shape[x.shape.rank - 1]
            for position in 1...4 {
                let info = try required(position)
                guard info.shape.dims == [channels] else {
                    throw mismatch("parameter \(position) \(info.shape) must be [\(channels)]")
                }
            }
            return output(x.shape.dims)
        }
    }

    /// numpy broadcasting of two shapes.
    static func broadcast(_ a: Shape, _ b: Shape, mismatch: (String) -> GraphError) throws -> [Int] {
        let rank = max(a.rank, b.rank)
        var dims = [Int](repeating: 1, count: rank)
        for axis in 0..<rank {
            let da = axis - (rank - a.rank) >= 0 ? a[axis - (rank - a.rank)] : 1
            let db = axis - (rank - b.rank) >= 0 ? b[axis - (rank - b.rank)] : 1
            guard da == db || da == 1 || db == 1 else {
                throw mismatch("\(a) and \(b) do not broadcast")
            }
            dims[axis] = da == 1 ? db : da
        }
        return dims
    }

    static func resolvedPadding(_ padding: Padding, height: Int, width: Int, kernel: (Int, Int), stride: (Int, Int),
                                dilation: (Int, Int), attribute: (String) -> GraphError) throws
        -> (top: Int, left: Int, bottom: Int, right: Int) {
        if case .explicit(let t, let l, let b, let r) = padding {
            guard [t, l, b, r].allSatisfy({ $0 >= 0 && $0 <= (1 << 24) }) else {
                throw attribute("padding (\(t),\(l),\(b),\(r)) must be between 0 and 2^24")
            }
        }
        guard kernel.0 <= (1 << 24), kernel.1 <= (1 << 24), dilation.0 <= (1 << 24), dilation.1 <= (1 << 24),
              stride.0 <= (1 << 24), stride.1 <= (1 << 24) else {
            throw attribute("kernel, stride or dilation exceeds 2^24")
        }
        return padding.resolve(height: height, width: width, kernel: kernel, stride: stride, dilation: dilation)
    }
}
