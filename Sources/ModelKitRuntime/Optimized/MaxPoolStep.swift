import CModelKitKernels
import ModelKitCore

/// NHWC max pooling (float or int8) on the C kernel, geometry resolved at plan time.
struct MaxPoolStep {
    let geometry: mk_pool_geometry
    let input: UnsafeRawPointer
    let output: UnsafeMutableRawPointer
    let isInt8: Bool

    init(input: UnsafeRawPointer, inputShape: Shape, output: UnsafeMutableRawPointer, outputShape: Shape,
         attributes a: Pool2DAttributes, isInt8: Bool) {
        let (h, w) = (inputShape[1], inputShape[2])
        let pad = a.padding.resolve(height: h, width: w, kernel: (a.kernelH, a.kernelW), stride: (a.strideH, a.strideW))
        geometry = mk_pool_geometry(n: inputShape[0], h: h, w: w, c: inputShape[3], kh: a.kernelH, kw: a.kernelW,
                                    sh: a.strideH, sw: a.strideW, pad_top: pad.top, pad_left: pad.left,
                                    oh: outputShape[1], ow: outputShape[2])
        self.input = input
        self.output = output
        self.isInt8 = isInt8
    }

    func run() {
        withUnsafePointer(to: geometry) { geometry in
            if isInt8 {
                mk_maxpool_i8(geometry, input.assumingMemoryBound(to: Int8.self), output.assumingMemoryBound(to: Int8.self))
            } else {
                mk_maxpool_f32(geometry, input.assumingMemoryBound(to: Float.self), output.assumingMemoryBound(to: Float.self))
            }
        }
    }
}
