import ModelKitCore

extension Int8ReferenceKernels {
    /// int8 convolution (any groups, strides, dilations, padding): for each output channel o,
    /// acc = bias[o] + Σ (x − x.zeroPoint) · w, then requantized per channel. Padded cells
    /// contribute nothing (they hold the real value 0). Weights are symmetric (zero point 0).
    public static func conv2D(input x: Int8View, weight: UnsafePointer<Int8>, weightShape: Shape,
                              bias: UnsafePointer<Int32>?, attributes a: Conv2DAttributes,
                              requantization r: Requantization, output y: MutableInt8View) {
        let (batch, height, width, channels) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (outChannels, kernelH, kernelW, groupChannels) = (weightShape[0], weightShape[1], weightShape[2], weightShape[3])
        let (outHeight, outWidth) = (y.shape[1], y.shape[2])
        let outPerGroup = outChannels / a.groups
        let pad = a.padding.resolve(height: height, width: width, kernel: (kernelH, kernelW),
                                    stride: (a.strideH, a.strideW), dilation: (a.dilationH, a.dilationW))
        for n in 0..<batch {
            for oy in 0..<outHeight {
                for ox in 0..<outWidth {
                    for o in 0..<outChannels {
                        let firstChannel = (o / outPerGroup) * groupChannels
                        var acc: Int32 = bias?[o] ?? 0
                        for ky in 0..<kernelH {
                            let iy = oy * a.strideH - pad.top + ky * a.dilationH
                            if iy < 0 || iy >= height { continue }
                            for kx in 0..<kernelW {
                                let ix = ox * a.strideW - pad.left + kx * a.dilationW
                                if ix < 0 || ix >= width { continue }
                                for c in 0..<groupChannels {
                                    let q = Int32(x.data[((n * height + iy) * width + ix) * channels + firstChannel + c])
                                    let w = Int32(weight[((o * kernelH + ky) * kernelW + kx) * groupChannels + c])
                                    acc &+= (q - x.zeroPoint) * w
                                }
                            }
                        }
                        y.data[((n * outHeight + oy) * outWidth + ox) * outChannels + o] = r.apply(acc, channel: o)
                    }
                }
            }
        }
    }

    /// int8 fully connected layer: y[n, o] = requantize(bias[o] + Σ_k (x[n, k] − x.zeroPoint) · w[o, k]).
    public static func dense(input x: Int8View, weight: UnsafePointer<Int8>, weightShape: Shape,
                             bias: UnsafePointer<Int32>?, requantization r: Requantization, output y: MutableInt8View) {
        let (batch, depth, outputs) = (x.shape[0], x.shape[1], weightShape[0])
        for n in 0..<batch {
            for o in 0..<outputs {
                var acc: Int32 = bias?[o] ?? 0
                for k in 0..<depth {
                    acc &+= (Int32(x.data[n * depth + k]) - x.zeroPoint) * Int32(weight[o * depth + k])
                }
                y.data[n * outputs + o] = r.apply(acc, channel: o)
            }
        }
    }
}
