import ModelKitCore

// int8 models in ONNX's QDQ form: every int8 value is an INT8 tensor, made by a QuantizeLinear
// with the value's scale and zero point; an op that computes in int8 (Conv2D, Dense, Add,
// pools) reads its inputs through DequantizeLinear (weights per output channel, axis 0 of the
// OIHW or [O,K] weight; int32 bias at input scale × weight scale) and quantizes its result
// after the fused activation. Runtimes such as onnxruntime fuse each DQ → op → Q group back
// into one integer kernel. Ops that only move int8 data (Flatten, Reshape, Concat, layout
// Transposes) run on the INT8 tensors directly, which is exact.
extension ONNXGraphBuilder {
    /// Whether `node` is int8 arithmetic, exported as DQ inputs → float op → Q output.
    func runsInQDQForm(_ node: Node) -> Bool {
        guard values[node.outputs[0]]?.dtype == .int8 else { return false }
        switch node.operation {
        case .conv2D, .dense, .add, .maxPool2D, .averagePool2D, .globalAveragePool:
            return true
        default:
            return false
        }
    }

    /// The float (dequantized) form of the int8 or int32 value or constant `name`, held in `form`.
    func dequantized(_ name: String, _ form: Form, node: Node) throws -> String {
        let key = "\(name)|\(form)|dequantized"
        if let cached = converted[key] { return cached }
        let source = try value(name, form, node: node)
        let target = fresh("\(source)__dequantized")
        try addDequantize(name, source, form, into: target, node: node)
        converted[key] = target
        return target
    }

    /// A DequantizeLinear of `source` (modelkit value `name` held in `form`) into `target`.
    func addDequantize(_ name: String, _ source: String, _ form: Form, into target: String, node: Node) throws {
        guard let info = values[name], info.dtype == .int8 || info.dtype == .int32, let q = info.quantization else {
            throw ONNXExportError.unsupportedNode(node: node.name, op: node.operation.name,
                                                  reason: "'\(name)' is not an int8 or int32 value with quantization parameters")
        }
        guard q.zeroPoints.count == q.scales.count, !q.scales.isEmpty else {
            throw ONNXExportError.unsupportedNode(node: node.name, op: node.operation.name,
                                                  reason: "'\(name)' has \(q.scales.count) scales and \(q.zeroPoints.count) zero points")
        }
        let zeroPoints: ONNXOutTensorData = info.dtype == .int8
            ? .int8(q.zeroPoints.map { Int8(clamping: $0) }) : .int32(q.zeroPoints)
        if let axis = q.axis {
            // A per-axis constant held NCHW was padded to rank 4 first, then permuted.
            let onnxAxis = form == .nchw ? Self.nhwcToNCHW[axis + 4 - info.shape.rank] : axis
            let scale = addInitializer("\(name).scale", dims: [q.scales.count], .float(q.scales))
            let zeroPoint = addInitializer("\(name).zero_point", dims: [q.scales.count], zeroPoints)
            addNode("DequantizeLinear", [source, scale, zeroPoint], [target], name: "\(name)/dequantize",
                    ["axis": .int(Int64(onnxAxis))])
        } else {
            let (scale, zeroPoint) = perTensorParameters(name, q, zeroPoints)
            addNode("DequantizeLinear", [source, scale, zeroPoint], [target], name: "\(name)/dequantize")
        }
    }

    /// A QuantizeLinear of float `source` into `target` with the per-tensor int8 parameters of
    /// modelkit value `name`.
    func addQuantize(_ source: String, into target: String, parametersOf name: String, node: Node) throws {
        guard let info = values[name], info.dtype == .int8, let q = info.quantization, q.axis == nil,
              q.scales.count == 1, q.zeroPoints.count == 1 else {
            throw ONNXExportError.unsupportedNode(node: node.name, op: node.operation.name,
                                                  reason: "output '\(name)' is not int8 with per-tensor parameters")
        }
        let (scale, zeroPoint) = perTensorParameters(name, q, .int8([Int8(clamping: q.zeroPoints[0])]))
        addNode("QuantizeLinear", [source, scale, zeroPoint], [target], name: "\(node.name)/quantize")
    }

    /// Scalar scale and zero-point initializers of value `name`, shared by its Q and DQ nodes.
    private func perTensorParameters(_ name: String, _ q: QuantizationParameters,
                                     _ zeroPoint: ONNXOutTensorData) -> (scale: String, zeroPoint: String) {
        let key = "\(name)|parameters"
        if let scale = converted[key + ".scale"], let zero = converted[key + ".zero_point"] { return (scale, zero) }
        let scale = addInitializer("\(name).scale", dims: [], .float(q.scales))
        let zero = addInitializer("\(name).zero_point", dims: [], zeroPoint)
        converted[key + ".scale"] = scale
        converted[key + ".zero_point"] = zero
        return (scale, zero)
    }

    /// The ONNX element type of a modelkit dtype; uint8 values have no place in a modelkit
    /// int8 model (they are rejected by graph analysis first).
    static func elementType(_ dtype: DType, name: String) throws -> ONNXOutElementType {
        switch dtype {
        case .float32: return .float
        case .int8: return .int8
        case .int32: return .int32
        case .uint8: throw ONNXExportError.unsupportedDType(name: name, dtype: dtype)
        }
    }

    static func data(of tensor: Tensor, name: String) throws -> ONNXOutTensorData {
        switch tensor.storage {
        case .float32(let values): return .float(values)
        case .int8(let values): return .int8(values)
        case .int32(let values): return .int32(values)
        case .uint8: throw ONNXExportError.unsupportedDType(name: name, dtype: tensor.dtype)
        }
    }

    static func transposedNHWCToNCHW(_ data: ONNXOutTensorData, dims: [Int]) -> ONNXOutTensorData {
        switch data {
        case .float(let values): return .float(transposeNHWCToNCHW(values, dims: dims))
        case .int8(let values): return .int8(transposeNHWCToNCHW(values, dims: dims))
        case .int32(let values): return .int32(transposeNHWCToNCHW(values, dims: dims))
        case .int64(let values): return .int64(transposeNHWCToNCHW(values, dims: dims))
        }
    }
}
