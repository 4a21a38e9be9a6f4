import ModelKitCore
import ModelKitRuntime

/// Feeding and reading models quantized with `--int8-io`: their input takes int8 codes and an
/// output may be int8. The CLI reads and prints real values either way.
extension Tensor {
    /// This float batch as the model input wants it: unchanged for a float input, quantized with
    /// the input's parameters for an int8 one.
    func fitted(to input: ValueInfo) -> Tensor {
        guard input.dtype == .int8, let q = input.quantization, let values = floats else { return self }
        let codes = values.map { Int8ReferenceKernels.quantize($0, scale: q.scales[0], zeroPoint: q.zeroPoints[0]) }
        return Tensor(shape: shape, storage: .int8(codes), quantization: q)
    }

    /// The real values: the floats, or scale × (code − zero point) for a per-tensor int8 tensor.
    var realValues: [Float] {
        if let floats { return floats }
        guard case .int8(let codes) = storage, let q = quantization, q.scales.count == 1 else { return [] }
        return codes.map { q.scales[0] * Float(Int32($0) - q.zeroPoints[0]) }
    }
}
