import ModelKitCore

extension ReferenceKernels {
    /// 2-D convolution (cross-correlation, as in ONNX and TensorFlow).
    ///
    /// x [N,H,W,C], weight [O,kH,kW,C/groups], bias [O]? -> y [N,OH,OW,O].
    /// Output channel `oc` belongs to group `oc / (O/groups)` and reads input channels
    /// `group*(C/groups) ..< (group+1)*(C/groups)`; depthwise is groups == C.
    /// Taps that fall into the padding contribute zero.
    public static func conv2D(input x: TensorView, weight w: TensorView, bias: TensorView?,
                              attributes a: Conv2DAttributes, output y: MutableTensorView) {
        let (batch, height, width, channels) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (outChannels, kernelH, kernelW, channelsPerGroup) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let (outHeight, outWidth) = (y.shape[1], y.shape[2])
        let pad = a.padding.resolve(height: height, width: width, kernel: (kernelH, kernelW),
                                    stride: (a.strideH, a.strideW), dilation: (a.dilationH, a.dilationW))
        let outPerGroup = outChannels / a.groups

        for n in 0..<batch {
            for oy in 0..<outHeight {
                for ox in 0..<outWidth {
                    for oc in 0..<outChannels {
                        let group = oc / outPerGroup
                        var sum: Float = bias?.data[oc] ?? 0
                        for ky in 0..<kernelH {
                            let iy = oy * a.strideH - pad.top + ky * a.dilationH
                            if iy < 0 || iy >= height { continue }
                            for kx in 0..<kernelW {
                                let ix = ox * a.strideW - pad.left + kx * a.dilationW
                                if ix < 0 || ix >= width { continue }
                                for ic in 0..<channelsPerGroup {
                                    let xIndex = ((n * height + iy) * width + ix) * channels + group * channelsPerGroup + ic
                                    let wIndex = ((oc * kernelH + ky) * kernelW + kx) * channelsPerGroup + ic
                                    sum += x.data[xIndex] * w.data[wIndex]
                                }
                            }
                        }
                        y.data[((n * outHeight + oy) * outWidth + ox) * outChannels + oc] = a.activation.apply(sum)
                    }
                }
            }
        }
    }
}
