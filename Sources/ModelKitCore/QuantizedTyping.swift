/// The dtype and quantization rules of int8 graphs, checked by `ShapeInference` before shapes.
///
/// A value is float32 or int8. int8 activations are per-tensor (one scale, one zero point);
/// Conv2D and Dense weights are int8, symmetric per output channel (axis 0, zero points 0) and
/// their optional bias is int32 with the implied scale input scale × weight scale. Ops that only
/// move or select values (MaxPool2D, Flatten, Reshape, Concat, Dropout) and the averaging pools
/// keep their input's parameters, so they need no requantization.
enum QuantizedTyping {
    /// Ops with an int8 kernel.
    static func hasInt8Kernel(_ operation: Operation) -> Bool {
        switch operation {
        case .conv2D, .dense, .add, .maxPool2D, .averagePool2D, .globalAveragePool, .flatten, .reshape, .concat,
             .dropout, .dequantizeLinear:
            return true
        default:
            return false
        }
    }

    /// The dtype and quantization of the node's output, or a one-line error naming the rule broken.
    static func output(node: Node, inputs: [ValueInfo?], outputQuantization: QuantizationParameters?)
        throws -> (DType, QuantizationParameters?) {
        let op = node.operation
        func fail(_ reason: String) -> GraphError {
            GraphError.invalidQuantization(node: node.name, op: op.name, reason: reason)
        }
        func perTensor(_ q: QuantizationParameters?, _ what: String) throws -> QuantizationParameters {
            guard let q else { throw fail("\(what) has no quantization parameters") }
            guard q.axis == nil, q.scales.count == 1, q.zeroPoints.count == 1 else {
                throw fail("\(what) must be quantized per tensor (one scale, one zero point)")
            }
            guard q.scales[0].isFinite, q.scales[0] > 0 else { throw fail("\(what) has scale \(q.scales[0])") }
            guard (-128...127).contains(q.zeroPoints[0]) else {
                throw fail("\(what) has zero point \(q.zeroPoints[0]), outside the int8 range")
            }
            return q
        }
        for case let info? in inputs where info.dtype == .uint8 {
            throw GraphError.unsupportedDType(node: node.name, op: op.name, dtype: info.dtype)
        }
        let x = inputs.first ?? nil
        switch op {
        case .quantizeLinear:
            if let x, x.dtype != .float32 { throw GraphError.unsupportedDType(node: node.name, op: op.name, dtype: x.dtype) }
            return (.int8, try perTensor(outputQuantization, "output '\(node.outputs[0])'"))
        case .dequantizeLinear:
            guard let x, x.dtype == .int8 else {
                throw GraphError.unsupportedDType(node: node.name, op: op.name, dtype: x?.dtype ?? .float32)
            }
            _ = try perTensor(x.quantization, "input '\(x.name)'")
            guard outputQuantization == nil else { throw fail("float output '\(node.outputs[0])' has quantization parameters") }
            return (.float32, nil)
        default:
            break
        }
        guard let x, x.dtype == .int8 else {
            for case let info? in inputs where info.dtype != .float32 {
                throw GraphError.unsupportedDType(node: node.name, op: op.name, dtype: info.dtype)
            }
            guard outputQuantization == nil else { throw fail("float output '\(node.outputs[0])' has quantization parameters") }
            return (.float32, nil)
        }
        guard hasInt8Kernel(op) else { throw GraphError.unsupportedDType(node: node.name, op: op.name, dtype: .int8) }
        let inputParameters = try perTensor(x.quantization, "input '\(x.name)'")
        let outputParameters = try perTensor(outputQuantization, "output '\(node.outputs[0])'")
        func sameAsInput() throws {
            guard outputParameters == inputParameters else {
                throw fail("output '\(node.outputs[0])' must keep the parameters of input '\(x.name)'")
            }
        }
        switch op {
        case .conv2D, .dense:
            if case .leakyRelu = op.fusedActivation ?? .none { throw fail("a fused leaky ReLU has no int8 form") }
            guard inputs.count > 1, let w = inputs[1], w.dtype == .int8, let wq = w.quantization else {
                throw fail("weight must be int8 with per-channel quantization")
            }
            guard wq.axis == 0, wq.scales.count == w.shape[0], wq.zeroPoints.allSatisfy({ $0 == 0 }),
                  wq.scales.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw fail("weight '\(w.name)' must be symmetric per output channel (axis 0, zero points 0)")
            }
            if inputs.count > 2, let bias = inputs[2], bias.dtype != .int32 {
                throw fail("bias '\(bias.name)' must be int32, found \(bias.dtype)")
            }
        case .add:
            if case .leakyRelu = op.fusedActivation ?? .none { throw fail("a fused leaky ReLU has no int8 form") }
            guard inputs.count > 1, let y = inputs[1], y.dtype == .int8 else { throw fail("both inputs must be int8") }
            _ = try perTensor(y.quantization, "input '\(y.name)'")
        case .concat:
            for case let info? in inputs where info.dtype != .int8 || info.quantization != outputParameters {
                throw fail("input '\(info.name)' must be int8 with the output's parameters")
            }
        default:
            try sameAsInput()
        }
        return (.int8, outputParameters)
    }
}
