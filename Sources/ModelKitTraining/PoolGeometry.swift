import ModelKitCore

/// Output size and padding of a pooling window over an NHWC input.
struct PoolGeometry: Equatable {
    var n, h, w, c, oh, ow, top, left: Int

    init(shape: [Int], attributes a: Pool2DAttributes, layer: String) throws {
        guard shape.count == 4 else {
            throw TrainingError.shapeMismatch(layer: layer, reason: "expected [N,H,W,C], got \(shape)")
        }
        let pad = a.padding.resolve(height: shape[1], width: shape[2], kernel: (a.kernelH, a.kernelW),
                                    stride: (a.strideH, a.strideW))
        guard pad.top < a.kernelH, pad.bottom < a.kernelH, pad.left < a.kernelW, pad.right < a.kernelW else {
            throw TrainingError.invalidConfiguration(layer: layer, reason: "padding must be smaller than the kernel")
        }
        let paddedH = shape[1] + pad.top + pad.bottom, paddedW = shape[2] + pad.left + pad.right
        guard paddedH >= a.kernelH, paddedW >= a.kernelW else {
            throw TrainingError.shapeMismatch(layer: layer, reason: "input \(shape) is smaller than the window")
        }
        (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        oh = (paddedH - a.kernelH) / a.strideH + 1
        ow = (paddedW - a.kernelW) / a.strideW + 1
        (top, left) = (pad.top, pad.left)
    }

    static func validate(_ a: Pool2DAttributes, layer: String) throws {
        guard a.kernelH >= 1, a.kernelW >= 1, a.strideH >= 1, a.strideW >= 1 else {
            throw TrainingError.invalidConfiguration(layer: layer, reason: "kernel and strides must be at least 1")
        }
    }
}
