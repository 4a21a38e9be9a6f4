import CModelKitKernels
import ModelKitCore

/// int8 Conv2D (groups == 1, through int8 im2col) and Dense on the int8 GEMM of CModelKitKernels
/// (AVX2 or portable, chosen at run time). The GEMM sums raw codes; the input zero point is taken
/// out with the weight row sums (Σ (q − z)·w = Σ q·w − z·Σ w, exact in integers), and the shared
/// `Requantization` finishes each value, so results are bit-exact with `Int8ReferenceKernels`.
enum Int8GemmKernels {
    /// Σ_k w[o, k] for each output channel o of a weight stored [O, ...] row-major.
    static func rowSums(_ weight: UnsafePointer<Int8>, outputs: Int, depth: Int) -> [Int32] {
        (0..<outputs).map { o in
            var sum: Int32 = 0
            for k in 0..<depth { sum &+= Int32(weight[o * depth + k]) }
            return sum
        }
    }

    /// int8 im2col bytes a convolution needs (0 when the input feeds the GEMM directly).
    static func conv2DColumnCount(weight: Shape, output: Shape, attributes: Conv2DAttributes) -> Int {
        GemmKernels.isPointwise(weight: weight, attributes: attributes) ? 0
            : output[1] * output[2] * weight[1] * weight[2] * weight[3]
    }

    /// int32 accumulators for one image of a convolution, or the whole batch of a Dense.
    static func accumulatorCount(rows: Int, outputs: Int) -> Int { rows * outputs }

    static func conv2D(input x: Int8View, weight: UnsafePointer<Int8>, weightShape: Shape, bias: UnsafePointer<Int32>?,
                       rowSums: [Int32], attributes a: Conv2DAttributes, requantization r: Requantization,
                       output y: MutableInt8View, columns: UnsafeMutablePointer<Int8>?,
                       accumulators: UnsafeMutablePointer<Int32>) {
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, kh, kw) = (weightShape[0], weightShape[1], weightShape[2])
        let (oh, ow) = (y.shape[1], y.shape[2])
        let depth = kh * kw * c
        let pixels = oh * ow
        let pointwise = GemmKernels.isPointwise(weight: weightShape, attributes: a)
        let pad = a.padding.resolve(height: h, width: w, kernel: (kh, kw), stride: (a.strideH, a.strideW),
                                    dilation: (a.dilationH, a.dilationW))
        // A padded cell holds the zero point: it contributes (z − z)·w = 0 like the reference.
        let padValue = Int8(x.zeroPoint)
        for image in 0..<n {
            let source = x.data + image * h * w * c
            let matrix: UnsafePointer<Int8>
            if pointwise {
                matrix = source
            } else {
                var row = columns!
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        for ky in 0..<kh {
                            let iy = oy * a.strideH - pad.top + ky * a.dilationH
                            for kx in 0..<kw {
                                let ix = ox * a.strideW - pad.left + kx * a.dilationW
                                if iy >= 0 && iy < h && ix >= 0 && ix < w {
                                    row.update(from: source + (iy * w + ix) * c, count: c)
                                } else {
                                    row.update(repeating: padValue, count: c)
                                }
                                row += c
                            }
                        }
                    }
                }
                matrix = UnsafePointer(columns!)
            }
            mk_igemm(pixels, o, depth, matrix, depth, weight, depth, accumulators, o)
            finish(accumulators, rows: pixels, outputs: o, bias: bias, rowSums: rowSums, inputZeroPoint: x.zeroPoint,
                   requantization: r, output: y.data + image * pixels * o)
        }
    }

    static func dense(input x: Int8View, weight: UnsafePointer<Int8>, weightShape: Shape, bias: UnsafePointer<Int32>?,
                      rowSums: [Int32], requantization r: Requantization, output y: MutableInt8View,
                      accumulators: UnsafeMutablePointer<Int32>) {
        let (n, k, o) = (x.shape[0], x.shape[1], weightShape[0])
        mk_igemm(n, o, k, x.data, k, weight, k, accumulators, o)
        finish(accumulators, rows: n, outputs: o, bias: bias, rowSums: rowSums, inputZeroPoint: x.zeroPoint,
               requantization: r, output: y.data)
    }

    @inline(__always)
    static func finish(_ accumulators: UnsafeMutablePointer<Int32>, rows: Int, outputs: Int, bias: UnsafePointer<Int32>?,
                       rowSums: [Int32], inputZeroPoint: Int32, requantization r: Requantization,
                       output: UnsafeMutablePointer<Int8>) {
        r.multipliers.withUnsafeBufferPointer { multipliers in
            rowSums.withUnsafeBufferPointer { sums in
                for row in 0..<rows {
                    let line = accumulators + row * outputs
                    let destination = output + row * outputs
                    for column in 0..<outputs {
                        let acc = line[column] &+ (bias?[column] ?? 0) &- inputZeroPoint &* sums[column]
                        let value = multipliers[column].apply(acc) &+ r.outputZeroPoint
                        destination[column] = Int8(min(max(value, r.minimum), r.maximum))
                    }
                }
            }
        }
    }
}
