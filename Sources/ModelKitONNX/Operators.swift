import ModelKitCore

/// Spatial attribute values are capped here (as in ModelKitCore's shape checks).
private let spatialMax: Int64 = 1 << 24

extension GraphConverter {
    func convertNode(_ ctx: NodeContext) throws {
        switch ctx.op {
        case "Conv": try convertConv(ctx)
        case "Gemm": try convertGemm(ctx)
        case "MatMul": try convertMatMul(ctx)
        case "BatchNormalization": try convertBatchNormalization(ctx)
        case "Relu": try convertUnary(ctx, .relu)
        case "Sigmoid": try convertUnary(ctx, .sigmoid)
        case "Tanh": try convertUnary(ctx, .tanh)
        case "HardSwish": try convertUnary(ctx, .hardSwish)
        case "LeakyRelu": try convertUnary(ctx, .leakyRelu(alpha: try ctx.float("alpha", default: 0.01)))
        case "Clip": try convertClip(ctx)
        case "Softmax": try convertSoftmax(ctx)
        case "MaxPool", "AveragePool": try convertPool(ctx)
        case "GlobalAveragePool": try convertGlobalAveragePool(ctx)
        case "Flatten": try convertFlatten(ctx)
        case "Reshape": try convertReshape(ctx)
        case "Transpose": try convertTranspose(ctx)
        case "Squeeze", "Unsqueeze": try convertSqueeze(ctx)
        case "Add", "Sub", "Mul", "Div": try convertBinary(ctx)
        case "Concat": try convertConcat(ctx)
        case "Pad": try convertPad(ctx)
        case "Dropout": try convertDropout(ctx)
        case "Identity": try ctx.define(try ctx.requiredInput(0))
        case "Constant": try convertConstant(ctx)
        case "Shape": try convertShape(ctx)
        case "Gather": try convertGather(ctx)
        case "Slice": try convertSlice(ctx)
        case "Cast": try convertCast(ctx)
        case "ConstantOfShape": try convertConstantOfShape(ctx)
        default: throw ctx.unsupported("op is not supported")
        }
    }

    // MARK: Convolution and pooling

    /// ONNX auto_pad / pads -> modelkit padding (pads are [top, left, bottom, right]).
    private func padding(_ ctx: NodeContext, kernel: [Int], strides: [Int], dilations: [Int],
                         height: Int, width: Int) throws -> Padding {
        let autoPad = try ctx.string("auto_pad", default: "NOTSET")
        switch autoPad {
        case "NOTSET", "":
            let pads = try ctx.spatial("pads", default: [0, 0, 0, 0], count: 4, range: 0...spatialMax)
            if pads.allSatisfy({ $0 == 0 }) { return .valid }
            return .explicit(top: pads[0], left: pads[1], bottom: pads[2], right: pads[3])
        case "VALID":
            return .valid
        case "SAME_UPPER":
            return .same
        case "SAME_LOWER":
            let upper = Padding.same.resolve(height: height, width: width, kernel: (kernel[0], kernel[1]),
                                             stride: (strides[0], strides[1]), dilation: (dilations[0], dilations[1]))
            return .explicit(top: upper.bottom, left: upper.right, bottom: upper.top, right: upper.left)
        default:
            throw ctx.invalid("auto_pad '\(autoPad)' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
        }
    }

    /// A 4-D run-time input in NHWC.
    private func spatialInput(_ ctx: NodeContext) throws -> TensorValue {
        let x = try ctx.tensorInput(0)
        guard x.rank == 4 else {
            throw ctx.unsupported("only 2-D spatial ops on 4-D NCHW input are supported, input is \(x.onnxShape)")
        }
        return try ctx.materialize(x, .nhwc)
    }

    private func convertConv(_ ctx: NodeContext) throws {
        let x = try spatialInput(ctx)
        let w = try ctx.constantInput(1)
        guard w.shape.count == 4, let weights = w.floats(), !w.isInteger else {
            throw ctx.invalid("weight must be a float [O,C/group,kH,kW] tensor, got \(w.shape)")
        }
        let group = try ctx.int("group", default: 1)
        guard group >= 1, group <= spatialMax else { throw ctx.invalid("group \(group) must be between 1 and 2^24") }
        let kernel = [w.shape[2], w.shape[3]]
        if let declared = try ctx.ints("kernel_shape"), declared.map({ Int($0) }) != kernel {
            throw ctx.invalid("kernel_shape \(declared) does not match weight \(w.shape)")
        }
        guard kernel.allSatisfy({ $0 >= 1 && $0 <= Int(spatialMax) }) else {
            throw ctx.invalid("kernel \(kernel) must be between 1 and 2^24")
        }
        let strides = try ctx.spatial("strides", default: [1, 1], count: 2, range: 1...spatialMax)
        let dilations = try ctx.spatial("dilations", default: [1, 1], count: 2, range: 1...spatialMax)
        let pad = try padding(ctx, kernel: kernel, strides: strides, dilations: dilations,
                              height: x.shape[1], width: x.shape[2])
        // OIHW -> OHWI.
        let ohwi = try ctx.fold { try ConstantMath.transpose(Constant(shape: w.shape, floats: weights), permutation: [0, 2, 3, 1]) }
        var inputs = [x.name, addInitializer(ctx.inputName(1), shape: ohwi.shape, values: ohwi.floats() ?? [])]
        if let b = try ctx.optionalConstant(2) {
            guard b.count == w.shape[0], let bias = b.floats(), !b.isInteger else {
                throw ctx.invalid("bias \(b.shape) must be [\(w.shape[0])] floats")
            }
            inputs.append(addInitializer(ctx.inputName(2), shape: [bias.count], values: bias))
        }
        let attributes = Conv2DAttributes(strides: (strides[0], strides[1]), dilations: (dilations[0], dilations[1]),
                                          padding: pad, groups: Int(group))
        try ctx.emit(.conv2D(attributes), inputs: inputs, layout: .nhwc, dynamicBatch: x.dynamicBatch)
    }

    private func convertPool(_ ctx: NodeContext) throws {
        let x = try spatialInput(ctx)
        guard let kernel64 = try ctx.ints("kernel_shape") else { throw ctx.invalid("kernel_shape is required") }
        guard kernel64.count == 2 else { throw ctx.unsupported("only 2-D pooling is supported, kernel_shape \(kernel64)") }
        let kernel = try ctx.spatial("kernel_shape", default: [], count: 2, range: 1...spatialMax)
        let strides = try ctx.spatial("strides", default: [1, 1], count: 2, range: 1...spatialMax)
        guard try ctx.int("ceil_mode", default: 0) == 0 else { throw ctx.unsupported("ceil_mode=1") }
        let isMax = ctx.op == "MaxPool"
        if isMax {
            let dilations = try ctx.spatial("dilations", default: [1, 1], count: 2, range: 1...spatialMax)
            guard dilations == [1, 1] else { throw ctx.unsupported("dilations \(dilations)") }
            guard try ctx.int("storage_order", default: 0) == 0 else { throw ctx.unsupported("storage_order=1") }
            try ctx.requireUnused(outputsFrom: 1)
        }
        let pad = try padding(ctx, kernel: kernel, strides: strides, dilations: [1, 1], height: x.shape[1], width: x.shape[2])
        let includePad = try ctx.int("count_include_pad", default: 0) != 0
        let attributes = Pool2DAttributes(kernel: (kernel[0], kernel[1]), strides: (strides[0], strides[1]),
                                          padding: pad, countIncludePad: includePad)
        try ctx.emit(isMax ? .maxPool2D(attributes) : .averagePool2D(attributes), inputs: [x.name], layout: .nhwc,
                     dynamicBatch: x.dynamicBatch)
    }

    private func convertGlobalAveragePool(_ ctx: NodeContext) throws {
        let x = try spatialInput(ctx)
        try ctx.emit(.globalAveragePool, inputs: [x.name], layout: .nhwc, dynamicBatch: x.dynamicBatch)
    }

    private func convertBatchNormalization(_ ctx: NodeContext) throws {
        var x = try ctx.tensorInput(0)
        switch x.rank {
        case 4: x = try ctx.materialize(x, .nhwc)
        case 2: break  // [N,C]: the channel is already last.
        default: throw ctx.unsupported("input of rank \(x.rank); only [N,C] and [N,C,H,W] are supported")
        }
        guard try ctx.int("training_mode", default: 0) == 0 else { throw ctx.unsupported("training_mode=1") }
        try ctx.requireUnused(outputsFrom: 1)
        let channels = x.shape[x.rank - 1]
        var inputs = [x.name]
        for index in 1...4 {
            let parameter = try ctx.constantInput(index)
            guard parameter.count == channels, parameter.shape.count <= 1, let values = parameter.floats(),
                  !parameter.isInteger else {
                throw ctx.invalid("input \(index) \(parameter.shape) must be [\(channels)] floats")
            }
            inputs.append(addInitializer(ctx.inputName(index), shape: [channels], values: values))
        }
        let epsilon = try ctx.float("epsilon", default: 1e-5)
        try ctx.emit(.batchNormalization(epsilon: epsilon), inputs: inputs, layout: x.layout, dynamicBatch: x.dynamicBatch)
    }

    // MARK: Dense

    private func convertGemm(_ ctx: NodeContext) throws {
        let a = try ctx.tensorInput(0)
        guard a.rank == 2 else { throw ctx.invalid("A must be 2-D, got \(a.onnxShape)") }
        guard try ctx.int("transA", default: 0) == 0 else { throw ctx.unsupported("transA=1 on a run-time input") }
        let b = try ctx.constantInput(1)
        guard b.shape.count == 2, !b.isInteger, b.floats() != nil else { throw ctx.invalid("B must be a 2-D float constant") }
        let transB = try ctx.int("transB", default: 0) != 0
        let alpha = try ctx.float("alpha", default: 1)
        let beta = try ctx.float("beta", default: 1)
        // modelkit's Dense weight is [O,K]: B itself when transB, else Bᵀ.
        let w = transB ? b : try ctx.fold { try ConstantMath.transpose(b, permutation: [1, 0]) }
        let (outFeatures, k) = (w.shape[0], w.shape[1])
        guard k == a.shape[1] else { throw ctx.invalid("A \(a.onnxShape) and B \(b.shape) do not multiply") }
        var weights = (w.floats() ?? []).map { $0 * alpha }
        if let order = nhwcFeatureOrder[a.name] {
            weights = permuteFeatures(weights, outFeatures: outFeatures, order: order)
        }
        var inputs = [a.name, addInitializer(ctx.inputName(1), shape: [outFeatures, k], values: weights)]
        if let c = try ctx.optionalConstant(2) {
            guard let bias = try biasVector(c, features: outFeatures) else {
                throw ctx.unsupported("C \(c.shape) must broadcast along the output features [\(outFeatures)]")
            }
            inputs.append(addInitializer(ctx.inputName(2), shape: [outFeatures], values: bias.map { $0 * beta }))
        }
        let result = try ctx.emit(.dense(activation: .none), inputs: inputs, layout: .onnx, dynamicBatch: a.dynamicBatch)
        if inputs.count == 2 { denseWithoutBias[result.name] = nodes.count - 1 }
    }

    private func convertMatMul(_ ctx: NodeContext) throws {
        let a = try ctx.tensorInput(0)
        guard a.rank == 2 else { throw ctx.unsupported("MatMul of a rank-\(a.rank) input; only [N,K] x constant [K,M]") }
        guard case .constant(let b) = try ctx.requiredInput(1) else {
            throw ctx.unsupported("the right-hand side must be a constant matrix")
        }
        guard b.shape.count == 2, !b.isInteger, b.floats() != nil else {
            throw ctx.unsupported("the right-hand side must be a 2-D float matrix, got \(b.shape)")
        }
        guard b.shape[0] == a.shape[1] else { throw ctx.invalid("A \(a.onnxShape) and B \(b.shape) do not multiply") }
        let w = try ctx.fold { try ConstantMath.transpose(b, permutation: [1, 0]) }
        var values = w.floats() ?? []
        if let order = nhwcFeatureOrder[a.name] { values = permuteFeatures(values, outFeatures: w.shape[0], order: order) }
        let weight = addInitializer(ctx.inputName(1), shape: w.shape, values: values)
        let result = try ctx.emit(.dense(activation: .none), inputs: [a.name, weight], layout: .onnx,
                                  dynamicBatch: a.dynamicBatch)
        denseWithoutBias[result.name] = nodes.count - 1
    }

    /// A constant that broadcasts along the last axis of an [N, features] result, as [features].
    private func biasVector(_ c: Constant, features: Int) throws -> [Float]? {
        guard let values = c.floats(), !c.isInteger else { return nil }
        if c.count == 1 { return [Float](repeating: values[0], count: features) }
        let shapeFits = c.shape == [features] || c.shape == [1, features]
        return shapeFits ? values : nil
    }

    // MARK: Elementwise

    private func convertUnary(_ ctx: NodeContext, _ operation: Operation) throws {
        let x = try ctx.tensorInput(0)
        try ctx.emit(operation, inputs: [x.name], layout: x.layout, dynamicBatch: x.dynamicBatch)
    }

    private func convertClip(_ ctx: NodeContext) throws {
        // Opset 11+ takes the bounds as optional inputs; older opsets as attributes.
        let lower = try ctx.scalarInput(1) ?? ctx.float("min") ?? -Float.infinity
        let upper = try ctx.scalarInput(2) ?? ctx.float("max") ?? Float.infinity
        guard !lower.isNaN, !upper.isNaN, lower <= upper else { throw ctx.invalid("min \(lower) must not exceed max \(upper)") }
        try convertUnary(ctx, .clip(min: lower, max: upper))
    }

    private func convertSoftmax(_ ctx: NodeContext) throws {
        let x = try ctx.tensorInput(0)
        let axis = try ConstantMath.normalizeAxisOrThrow(ctx, try ctx.int("axis", default: -1), rank: x.rank)
        let stored = x.layout == .nhwc ? onnxToNHWCAxis[axis] : axis
        try ctx.emit(.softmax(axis: stored), inputs: [x.name], layout: x.layout, dynamicBatch: x.dynamicBatch)
    }

    private func convertBinary(_ ctx: NodeContext) throws {
        let lhs = try ctx.requiredInput(0)
        let rhs = try ctx.requiredInput(1)
        let foldOp: ConstantMath.BinaryOp = ["Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div][ctx.op]!
        if case .constant(let a) = lhs, case .constant(let b) = rhs {
            try ctx.defineFolded { try ConstantMath.binary(foldOp, a, b, limit: foldLimit) }
            return
        }
        var isAdd = ctx.op == "Add"
        var second = rhs
        let transformed = ctx.op == "Sub" || ctx.op == "Div"
        if ctx.op == "Sub" || ctx.op == "Div" {
            // x - c = x + (-c); x / c = x * (1/c).
            guard case .constant(let c) = rhs, let values = c.floats(), !c.isInteger else {
                throw ctx.unsupported("only a constant float right-hand side is supported")
            }
            let inverse = ctx.op == "Sub" ? values.map { -$0 } : values.map { 1 / $0 }
            second = .constant(Constant(shape: c.shape, floats: inverse))
            isAdd = ctx.op == "Sub"
        }

        // MatMul/Gemm + Add of a bias vector -> one Dense with bias.
        if isAdd {
            for (tensorSide, constantSide, index) in [(lhs, second, 0), (second, lhs, 1)] {
                guard case .tensor(let t) = tensorSide, case .constant(let c) = constantSide,
                      let denseIndex = denseWithoutBias[t.name], useCounts[ctx.inputName(index), default: 0] == 1,
                      let bias = try biasVector(c, features: t.shape[1]) else { continue }
                let biasName = addInitializer(ctx.inputName(1 - index), shape: [bias.count], values: bias)
                try ctx.define(.tensor(fuseBias(into: denseIndex, bias: biasName, onnxOutput: ctx.outputName,
                                                dynamicBatch: t.dynamicBatch)))
                return
            }
        }

        let operands: [ImportedValue] = [lhs, second]
        let tensors = operands.compactMap { value -> TensorValue? in
            if case .tensor(let t) = value { return t }
            return nil
        }
        var layout: Layout = .onnx
        if tensors.contains(where: { $0.layout == .nhwc }) {
            // NHWC works when every tensor operand is 4-D; a lower-rank tensor would broadcast
            // against the wrong axes, so fall back to ONNX order then.
            layout = tensors.allSatisfy({ $0.rank == 4 }) ? .nhwc : .onnx
        }
        var names: [String] = []
        for (index, operand) in operands.enumerated() {
            switch operand {
            case .tensor(let t):
                names.append(try ctx.materialize(t, layout).name)
            case .constant(let c):
                let key = index == 1 && transformed ? "\(ctx.inputName(1))__\(ctx.op.lowercased())" : ctx.inputName(index)
                names.append(try initializer(c, onnxName: key, layout: layout, node: ctx.name, op: ctx.op).name)
            }
        }
        let dynamic = tensors.contains { $0.dynamicBatch }
        try ctx.emit(isAdd ? .add(activation: .none) : .mul, inputs: names, layout: layout, dynamicBatch: dynamic)
    }

    private func convertConcat(_ ctx: NodeContext) throws {
        let parts = try (0..<ctx.proto.inputs.count).map { try ctx.requiredInput($0) }
        guard !parts.isEmpty else { throw ctx.invalid("no inputs") }
        let axisAttribute = try ctx.attribute("axis", type: 2)?.i
        guard let axis = axisAttribute else { throw ctx.invalid("axis is required") }
        let constants = parts.compactMap { part -> Constant? in
            if case .constant(let c) = part { return c }
            return nil
        }
        if constants.count == parts.count {
            try ctx.defineFolded { try ConstantMath.concat(constants, axis: axis, limit: foldLimit) }
            return
        }
        let tensors = parts.compactMap { part -> TensorValue? in
            if case .tensor(let t) = part { return t }
            return nil
        }
        let rank = tensors[0].rank
        let normalized = try ConstantMath.normalizeAxisOrThrow(ctx, axis, rank: rank)
        let layout: Layout = rank == 4 && tensors.contains(where: { $0.layout == .nhwc }) ? .nhwc : .onnx
        let dynamic = tensors.contains { $0.dynamicBatch }
        if dynamic && normalized == 0 { throw ctx.unsupported("concatenation along the dynamic batch axis") }
        var names: [String] = []
        for (index, part) in parts.enumerated() {
            switch part {
            case .tensor(let t): names.append(try ctx.materialize(t, layout).name)
            case .constant(let c):
                guard c.shape.count == rank else { throw ctx.invalid("input \(index) \(c.shape) is not rank \(rank)") }
                names.append(try initializer(c, onnxName: ctx.inputName(index), layout: layout, node: ctx.name, op: ctx.op).name)
            }
        }
        let stored = layout == .nhwc ? onnxToNHWCAxis[normalized] : normalized
        try ctx.emit(.concat(axis: stored), inputs: names, layout: layout, dynamicBatch: dynamic)
    }

    private func convertPad(_ ctx: NodeContext) throws {
        let mode = try ctx.string("mode", default: "constant")
        guard mode == "constant" else { throw ctx.unsupported("mode '\(mode)'; only constant padding") }
        let x = try ctx.tensorInput(0)
        guard let rawPads = try ctx.integerInput(1) else { throw ctx.invalid("pads input is required") }
        let value = try ctx.scalarInput(2) ?? 0
        let rank = x.rank
        var pads = [Int](repeating: 0, count: 2 * rank)
        let axes = try ctx.integerInput(3).map { try $0.map { try ConstantMath.normalizeAxisOrThrow(ctx, $0, rank: rank) } }
            ?? Array(0..<rank)
        guard rawPads.count == 2 * axes.count, Set(axes).count == axes.count else {
            throw ctx.invalid("pads has \(rawPads.count) values for \(axes.count) axes")
        }
        for (k, axis) in axes.enumerated() {
            let (begin, end) = (rawPads[k], rawPads[k + axes.count])
            guard begin >= 0, end >= 0 else { throw ctx.unsupported("negative pads \(rawPads) (cropping)") }
            guard begin <= spatialMax, end <= spatialMax else { throw ctx.invalid("pads \(rawPads) exceed 2^24") }
            pads[axis] = Int(begin)
            pads[axis + rank] = Int(end)
        }
        if x.dynamicBatch && (pads[0] != 0 || pads[rank] != 0) { throw ctx.unsupported("padding the dynamic batch axis") }
        if x.layout == .nhwc {  // ONNX [n,c,h,w] begins/ends -> NHWC order.
            pads = [pads[0], pads[2], pads[3], pads[1], pads[4], pads[6], pads[7], pads[5]]
        }
        try ctx.emit(.pad(pads: pads, value: value), inputs: [x.name], layout: x.layout, dynamicBatch: x.dynamicBatch)
    }

    private func convertDropout(_ ctx: NodeContext) throws {
        if let training = try ctx.optionalConstant(2), training.integers()?.first ?? 0 != 0 {
            throw ctx.unsupported("training_mode=true")
        }
        try ctx.requireUnused(outputsFrom: 1)
        try ctx.define(try ctx.requiredInput(0))
    }

    // MARK: Shape changes

    private func convertFlatten(_ ctx: NodeContext) throws {
        let input = try ctx.requiredInput(0)
        let axisValue = try ctx.int("axis", default: 1)
        switch input {
        case .constant(let c):
            let axis = try ConstantMath.normalizeAxisOrThrow(ctx, axisValue, rank: c.shape.count, inclusive: true)
            let outer = Shape.checkedProduct(c.shape[..<axis]) ?? 0
            try ctx.define(.constant(c.reshaped([outer, c.count / max(outer, 1)])))
        case .tensor(let t):
            let axis = try ConstantMath.normalizeAxisOrThrow(ctx, axisValue, rank: t.rank, inclusive: true)
            if t.dynamicBatch && axis == 0 { throw ctx.unsupported("axis 0 folds the dynamic batch into features") }
            if axis == 1, try flattensIntoDense(t, ctx) {
                let result = try ctx.emit(.flatten(axis: 1), inputs: [t.name], layout: .onnx, dynamicBatch: t.dynamicBatch)
                nhwcFeatureOrder[result.name] = (t.shape[3], t.shape[1], t.shape[2])
                return
            }
            // ONNX flattens in NCHW element order.
            let x = try ctx.materialize(t, .onnx)
            try ctx.emit(.flatten(axis: axis), inputs: [x.name], layout: .onnx, dynamicBatch: t.dynamicBatch)
        }
    }

    private func convertReshape(_ ctx: NodeContext) throws {
        let input = try ctx.requiredInput(0)
        guard let target = try ctx.integerInput(1) else { throw ctx.invalid("shape input is required") }
        guard target.count <= limits.maxRank else {
            throw ONNXError.limitExceeded(what: "rank of reshape target", value: target.count, limit: limits.maxRank)
        }
        let allowZero = try ctx.int("allowzero", default: 0) != 0
        if allowZero && target.contains(0) { throw ctx.unsupported("allowzero=1 with a 0 in the shape") }
        switch input {
        case .constant(let c):
            let dims = try resolveReshape(ctx, from: c.shape, to: target)
            try ctx.define(.constant(c.reshaped(dims)))
        case .tensor(let t):
            var dims: [Int] = []
            for (axis, value) in target.enumerated() {
                if value == dynamicBatchMarker {
                    guard axis == 0, t.dynamicBatch else {
                        throw ctx.unsupported("the dynamic batch size is moved to axis \(axis)")
                    }
                    dims.append(0)
                } else {
                    guard value >= -1, value <= Int64(Int32.max) else { throw ctx.invalid("shape \(target) has dimension \(value)") }
                    dims.append(Int(value))
                }
            }
            if t.dynamicBatch, let first = dims.first, first > 0 {
                throw ctx.unsupported("shape \(target) fixes the dynamic batch dimension to \(first)")
            }
            // [N,C,H,W] -> [N,C*H*W] feeding a Dense: keep NHWC order and permute the weights instead.
            let features = t.rank == 4 ? Shape.checkedProduct(t.shape[1...]) : nil
            if let features, try resolveReshape(ctx, from: t.onnxShape, to: dims.map { Int64($0) }) == [t.shape[0], features],
               try flattensIntoDense(t, ctx) {
                let result = try ctx.emit(.reshape(shape: dims), inputs: [t.name], layout: .onnx, dynamicBatch: t.dynamicBatch)
                nhwcFeatureOrder[result.name] = (t.shape[3], t.shape[1], t.shape[2])
                return
            }
            let x = try ctx.materialize(t, .onnx)
            try ctx.emit(.reshape(shape: dims), inputs: [x.name], layout: .onnx, dynamicBatch: t.dynamicBatch)
        }
    }

    /// Whether flattening NHWC tensor `t` may skip the transpose to NCHW: true when the result's
    /// only reader is a Gemm (transA=0) or MatMul whose weights are already known constants, so
    /// their columns can be permuted to NHWC feature order instead.
    private func flattensIntoDense(_ t: TensorValue, _ ctx: NodeContext) throws -> Bool {
        guard t.layout == .nhwc, useCounts[ctx.outputName, default: 0] == 1,
              let reader = consumers[ctx.outputName]?.first, reader.input == 0,
              reader.node.domain.isEmpty || reader.node.domain == "ai.onnx",
              reader.node.opType == "Gemm" || reader.node.opType == "MatMul",
              reader.node.inputs.count > 1, case .constant(let b)? = values[reader.node.inputs[1]],
              b.shape.count == 2, !b.isInteger else { return false }
        let transA = reader.node.attributes.first { $0.name == "transA" }?.i ?? 0
        return transA == 0
    }

    /// Dense weight [O,K] with columns in ONNX NCHW feature order -> columns in NHWC order.
    private func permuteFeatures(_ weights: [Float], outFeatures: Int, order: (c: Int, h: Int, w: Int)) -> [Float] {
        let (c, h, w) = order
        let k = c * h * w
        var result = [Float](repeating: 0, count: weights.count)
        for o in 0..<outFeatures {
            for y in 0..<h {
                for x in 0..<w {
                    for channel in 0..<c {
                        result[o * k + (y * w + x) * c + channel] = weights[o * k + (channel * h + y) * w + x]
                    }
                }
            }
        }
        return result
    }

    /// ONNX Reshape semantics on a known shape (0 copies, one -1 is inferred).
    private func resolveReshape(_ ctx: NodeContext, from shape: [Int], to target: [Int64]) throws -> [Int] {
        let total = Shape.checkedProduct(shape) ?? 0
        var dims: [Int] = []
        var inferred: Int?
        for (axis, value) in target.enumerated() {
            switch value {
            case 0:
                guard axis < shape.count else { throw ctx.invalid("0 at axis \(axis) copies a dimension \(shape) lacks") }
                dims.append(shape[axis])
            case -1:
                guard inferred == nil else { throw ctx.invalid("more than one -1 in \(target)") }
                inferred = axis
                dims.append(1)
            case 1...Int64(Int32.max):
                dims.append(Int(value))
            default:
                throw ctx.invalid("shape \(target) has dimension \(value)")
            }
        }
        if let axis = inferred {
            guard let known = Shape.checkedProduct(dims), known > 0, total % known == 0 else {
                throw ctx.invalid("cannot reshape \(shape) to \(target)")
            }
            dims[axis] = total / known
        }
        guard Shape.checkedProduct(dims) == total else { throw ctx.invalid("cannot reshape \(shape) to \(target)") }
        return dims
    }

    private func convertTranspose(_ ctx: NodeContext) throws {
        let input = try ctx.requiredInput(0)
        let rank: Int
        switch input {
        case .constant(let c): rank = c.shape.count
        case .tensor(let t): rank = t.rank
        }
        let permutation = try ctx.ints("perm")?.map { Int(clamping: $0) } ?? Array((0..<rank).reversed())
        guard permutation.count == rank, permutation.sorted() == Array(0..<rank) else {
            throw ctx.invalid("perm \(permutation) is not a permutation of \(rank) axes")
        }
        switch input {
        case .constant(let c):
            try ctx.defineFolded { try ConstantMath.transpose(c, permutation: permutation) }
        case .tensor(let t):
            if t.dynamicBatch && permutation[0] != 0 { throw ctx.unsupported("moving the dynamic batch axis") }
            let stored = t.layout == .nhwc ? permutation.map { onnxToNHWCAxis[$0] } : permutation
            try ctx.emit(.transpose(permutation: stored), inputs: [t.name], layout: .onnx, dynamicBatch: t.dynamicBatch)
        }
    }

    private func convertSqueeze(_ ctx: NodeContext) throws {
        let input = try ctx.requiredInput(0)
        let shape: [Int]
        switch input {
        case .constant(let c): shape = c.shape
        case .tensor(let t): shape = t.onnxShape
        }
        let axesValues = try ctx.integerInput(1) ?? ctx.ints("axes")
        var outShape: [Int]
        var touched: Set<Int>
        if ctx.op == "Unsqueeze" {
            guard let axesValues else { throw ctx.invalid("axes are required") }
            let outRank = shape.count + axesValues.count
            guard outRank <= limits.maxRank else {
                throw ONNXError.limitExceeded(what: "rank after Unsqueeze", value: outRank, limit: limits.maxRank)
            }
            touched = Set(try axesValues.map { try ConstantMath.normalizeAxisOrThrow(ctx, $0, rank: outRank) })
            guard touched.count == axesValues.count else { throw ctx.invalid("axes \(axesValues) repeat") }
            outShape = []
            var next = shape.makeIterator()
            for axis in 0..<outRank { outShape.append(touched.contains(axis) ? 1 : next.next() ?? 1) }
        } else {
            if let axesValues {
                touched = Set(try axesValues.map { try ConstantMath.normalizeAxisOrThrow(ctx, $0, rank: shape.count) })
                for axis in touched where shape[axis] != 1 {
                    throw ctx.invalid("axis \(axis) of \(shape) has size \(shape[axis]), not 1")
                }
            } else {
                touched = Set(shape.indices.filter { shape[$0] == 1 })
            }
            outShape = shape.indices.filter { !touched.contains($0) }.map { shape[$0] }
        }
        switch input {
        case .constant(let c):
            try ctx.define(.constant(c.reshaped(outShape)))
        case .tensor(let t):
            if t.dynamicBatch {
                guard !touched.contains(0) else { throw ctx.unsupported("squeezing or unsqueezing the dynamic batch axis") }
                outShape[0] = 0
            }
            let x = try ctx.materialize(t, .onnx)
            try ctx.emit(.reshape(shape: outShape), inputs: [x.name], layout: .onnx, dynamicBatch: t.dynamicBatch)
        }
    }

    // MARK: Constants and folded shape arithmetic

    private func convertConstant(_ ctx: NodeContext) throws {
        guard ctx.proto.attributes.count == 1, let attribute = ctx.proto.attributes.first else {
            throw ctx.invalid("must have exactly one value attribute")
        }
        let constant: Constant
        switch attribute.name {
        case "value":
            guard let tensor = try ctx.attribute("value", type: 4)?.t else { throw ctx.invalid("value has no tensor") }
            constant = try Constant(tensor, limits: limits)
        case "value_float":
            constant = Constant(shape: [], floats: [try ctx.float("value_float") ?? 0])
        case "value_floats":
            let values = try ctx.attribute("value_floats", type: 6)?.floats ?? []
            constant = Constant(shape: [values.count], floats: values)
        case "value_int":
            constant = Constant(shape: [], ints: [try ctx.int("value_int", default: 0)])
        case "value_ints":
            let values = try ctx.ints("value_ints") ?? []
            constant = Constant(shape: [values.count], ints: values)
        default:
            throw ctx.unsupported("attribute '\(attribute.name)'")
        }
        try ctx.define(.constant(constant))
    }

    private func convertShape(_ ctx: NodeContext) throws {
        var dims: [Int64]
        switch try ctx.requiredInput(0) {
        case .constant(let c): dims = c.shape.map { Int64($0) }
        case .tensor(let t):
            dims = t.onnxShape.map { Int64($0) }
            if t.dynamicBatch { dims[0] = dynamicBatchMarker }
        }
        let rank = Int64(dims.count)
        func clamp(_ value: Int64) -> Int { Int(min(max(value < 0 ? value + rank : value, 0), rank)) }
        let start = clamp(try ctx.int("start", default: 0))
        let end = clamp(try ctx.int("end", default: rank))
        let slice = start < end ? Array(dims[start..<end]) : []
        try ctx.define(.constant(Constant(shape: [slice.count], ints: slice)))
    }

    private func convertGather(_ ctx: NodeContext) throws {
        guard case .constant(let data) = try ctx.requiredInput(0) else {
            throw ctx.unsupported("Gather on a run-time tensor; only constant (shape) values are folded")
        }
        let indices = try ctx.constantInput(1)
        let axis = try ctx.int("axis", default: 0)
        try ctx.defineFolded { try ConstantMath.gather(data, indices: indices, axis: axis, limit: foldLimit) }
    }

    private func convertSlice(_ ctx: NodeContext) throws {
        guard case .constant(let data) = try ctx.requiredInput(0) else {
            throw ctx.unsupported("Slice on a run-time tensor; only constant (shape) values are folded")
        }
        guard let starts = try ctx.integerInput(1), let ends = try ctx.integerInput(2) else {
            throw ctx.invalid("starts and ends are required")
        }
        let axes = try ctx.integerInput(3)
        let steps = try ctx.integerInput(4)
        try ctx.defineFolded {
            try ConstantMath.slice(data, starts: starts, ends: ends, axes: axes, steps: steps, limit: foldLimit)
        }
    }

    private func convertCast(_ ctx: NodeContext) throws {
        let to = try ctx.int("to", default: 0)
        let floatTargets: Set<Int64> = [Int64(ONNXDataType.float), Int64(ONNXDataType.double), Int64(ONNXDataType.float16)]
        let intTargets: Set<Int64> = [2, 3, 4, 5, 6, 7, 9, 12, 13]
        switch try ctx.requiredInput(0) {
        case .tensor(let t):
            guard to == Int64(ONNXDataType.float) else {
                throw ctx.unsupported("cast of a run-time tensor to \(ONNXDataType.name(Int32(clamping: to)))")
            }
            try ctx.define(.tensor(t))
        case .constant(let c):
            if floatTargets.contains(to) {
                guard let values = c.floats() else { throw ctx.unsupported("cast of the dynamic batch size to float") }
                try ctx.define(.constant(Constant(shape: c.shape, floats: values)))
            } else if intTargets.contains(to) {
                switch c.elements {
                case .int(let values):
                    let cast = to == 9 ? values.map { $0 != 0 && $0 != dynamicBatchMarker ? 1 : 0 } : values
                    try ctx.define(.constant(Constant(shape: c.shape, ints: cast)))
                case .float(let values):
                    guard values.allSatisfy({ $0.isFinite && abs($0) < 9.0e18 }) else {
                        throw ctx.invalid("cast of a non-finite or huge float to an integer")
                    }
                    let cast = to == 9 ? values.map { $0 != 0 ? Int64(1) : 0 } : values.map { Int64($0) }
                    try ctx.define(.constant(Constant(shape: c.shape, ints: cast)))
                }
            } else {
                throw ctx.unsupported("cast to \(ONNXDataType.name(Int32(clamping: to)))")
            }
        }
    }

    private func convertConstantOfShape(_ ctx: NodeContext) throws {
        guard let dims64 = try ctx.integerInput(0) else { throw ctx.invalid("shape input is required") }
        guard dims64.count <= limits.maxRank, dims64.allSatisfy({ $0 >= 0 && $0 <= Int64(Int32.max) }) else {
            throw ctx.invalid("shape \(dims64) is not a valid static shape")
        }
        let dims = dims64.map { Int($0) }
        var fill = Constant(shape: [], floats: [0])
        if let tensor = try ctx.attribute("value", type: 4)?.t {
            fill = try Constant(tensor, limits: limits)
            guard fill.count == 1 else { throw ctx.invalid("value must hold one element") }
        }
        try ctx.defineFolded {
            let count = try ConstantMath.checkedCount(dims, limit: foldLimit)
            switch fill.elements {
            case .float(let v): return Constant(shape: dims, floats: [Float](repeating: v[0], count: count))
            case .int(let v): return Constant(shape: dims, ints: [Int64](repeating: v[0], count: count))
            }
        }
    }
}

extension ConstantMath {
    /// `normalizeAxis` with the failure reported against the node.
    static func normalizeAxisOrThrow(_ ctx: NodeContext, _ axis: Int64, rank: Int, inclusive: Bool = false) throws -> Int {
        do {
            return try normalizeAxis(axis, rank: rank, inclusive: inclusive)
        } catch let error as FoldError {
            throw ctx.invalid(error.reason)
        }
    }
}
