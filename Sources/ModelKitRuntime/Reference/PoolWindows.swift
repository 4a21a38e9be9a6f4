import ModelKitCore

/// The window walk shared by the float and int8 reference pools: for every output cell (NHWC
/// order) it hands `reduce` the real input values of the window plus the number of window cells
/// inside the padded input (real + padding), and stores what `reduce` returns.
enum PoolWindows {
    static func pool<T>(input: UnsafePointer<T>, inputShape: Shape, output: UnsafeMutablePointer<T>, outputShape: Shape,
                        attributes a: Pool2DAttributes, reduce: (_ cells: [T], _ paddedCount: Int) -> T) {
        let (batch, height, width, channels) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let (outHeight, outWidth) = (outputShape[1], outputShape[2])
        let pad = a.padding.resolve(height: height, width: width, kernel: (a.kernelH, a.kernelW),
                                    stride: (a.strideH, a.strideW))
        var cells: [T] = []
        cells.reserveCapacity(a.kernelH * a.kernelW)
        for n in 0..<batch {
            for oy in 0..<outHeight {
                for ox in 0..<outWidth {
                    for c in 0..<channels {
                        cells.removeAll(keepingCapacity: true)
                        var paddedCount = 0
                        for ky in 0..<a.kernelH {
                            let iy = oy * a.strideH - pad.top + ky
                            if iy < -pad.top || iy >= height + pad.bottom { continue }
                            for kx in 0..<a.kernelW {
                                let ix = ox * a.strideW - pad.left + kx
                                if ix < -pad.left || ix >= width + pad.right { continue }
                                paddedCount += 1
                                if iy < 0 || iy >= height || ix < 0 || ix >= width { continue }
                                cells.append(input[((n * height + iy) * width + ix) * channels + c])
                            }
                        }
                        output[((n * outHeight + oy) * outWidth + ox) * channels + c] = reduce(cells, paddedCount)
                    }
                }
            }
        }
    }
}
