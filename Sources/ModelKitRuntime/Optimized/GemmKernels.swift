import CModelKitKernels
import ModelKitCore

/// Conv2D (groups == 1) and Dense through the packed SIMD GEMM of CModelKitKernels, which picks
/// AVX-512, AVX2+FMA or portable code at run time. Results match the reference kernels up to
/// float summation order; tests compare them on random shapes.
enum GemmKernels {
    /// Floats of im2col scratch a convolution needs (0 when the input can feed the GEMM directly).
    static func conv2DScratchCount(input: Shape, weight: Shape, output: Shape, attributes: Conv2DAttributes) -> Int {
        guard !isPointwise(weight: weight, attributes: attributes) else { return 0 }
        // One image at a time: [OH*OW, kH*kW*C].
        return output[1] * output[2] * weight[1] * weight[2] * weight[3]
    }

    /// A 1×1, stride-1, unpadded convolution is a plain GEMM over the input pixels.
    static func isPointwise(weight: Shape, attributes: Conv2DAttributes) -> Bool {
        weight[1] == 1 && weight[2] == 1 && attributes.strideH == 1 && attributes.strideW == 1
            && (attributes.padding == .valid || attributes.padding == .explicit(top: 0, left: 0, bottom: 0, right: 0)
                || attributes.padding == .same)
    }

    static func conv2D(input: TensorView, weight: TensorView, bias: TensorView?, attributes: Conv2DAttributes,
                       output: MutableTensorView, scratch: UnsafeMutablePointer<Float>?) {
        let (n, h, w, c) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (o, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2])
        let (oh, ow) = (output.shape[1], output.shape[2])
        let depth = kh * kw * c
        let pixels = oh * ow
        if isPointwise(weight: weight.shape, attributes: attributes) {
            mk_sgemm(0, 1, n * pixels, o, c, 1, input.data, c, weight.data, c, 0, output.data, o)
        } else {
            let pad = attributes.padding.resolve(height: h, width: w, kernel: (kh, kw),
                                                 stride: (attributes.strideH, attributes.strideW),
                                                 dilation: (attributes.dilationH, attributes.dilationW))
            let columns = scratch!
            for image in 0..<n {
                let source = input.data + image * h * w * c
                var row = columns
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        for ky in 0..<kh {
                            let y = oy * attributes.strideH - pad.top + ky * attributes.dilationH
                            for kx in 0..<kw {
                                let x = ox * attributes.strideW - pad.left + kx * attributes.dilationW
                                if y >= 0 && y < h && x >= 0 && x < w {
                                    row.update(from: source + (y * w + x) * c, count: c)
                                } else {
                                    row.update(repeating: 0, count: c)
                                }
                                row += c
                            }
                        }
                    }
                }
                mk_sgemm(0, 1, pixels, o, depth, 1, columns, depth, weight.data, depth, 0,
                         output.data + image * pixels * o, o)
            }
        }
        addBiasAndActivate(output.data, rows: n * pixels, columns: o, bias: bias?.data, activation: attributes.activation)
    }

    static func dense(input: TensorView, weight: TensorView, bias: TensorView?, activation: FusedActivation,
                      output: MutableTensorView) {
        let (n, k, o) = (input.shape[0], input.shape[1], weight.shape[0])
        mk_sgemm(0, 1, n, o, k, 1, input.data, k, weight.data, k, 0, output.data, o)
        addBiasAndActivate(output.data, rows: n, columns: o, bias: bias?.data, activation: activation)
    }

    @inline(__always)
    static func addBiasAndActivate(_ data: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
                                   bias: UnsafePointer<Float>?, activation: FusedActivation) {
        if bias == nil && activation == .none { return }
        for row in 0..<rows {
            let line = data + row * columns
            if let bias {
                for column in 0..<columns { line[column] += bias[column] }
            }
            switch activation {
            case .none: break
            case .relu: for column in 0..<columns where line[column] < 0 { line[column] = 0 }
            default: for column in 0..<columns { line[column] = activation.apply(line[column]) }
            }
        }
    }
}
