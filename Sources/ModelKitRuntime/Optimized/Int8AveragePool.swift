import CModelKitKernels
import ModelKitCore

/// int8 average and global average pooling on the C kernel (channels in SIMD lanes), identical to
/// Int8ReferenceKernels.averagePool2D / globalAveragePool.
enum Int8AveragePool {
    /// `attributes` nil: global average pooling (one window over the whole image).
    static func run(input x: Int8View, attributes: Pool2DAttributes?, output y: MutableInt8View,
                    path: Int32 = mk_kernels_active()) {
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let a = attributes ?? Pool2DAttributes(kernel: (h, w), strides: (1, 1))
        let pad = a.padding.resolve(height: h, width: w, kernel: (a.kernelH, a.kernelW), stride: (a.strideH, a.strideW))
        var geometry = mk_pool_geometry(n: n, h: h, w: w, c: c, kh: a.kernelH, kw: a.kernelW, sh: a.strideH,
                                        sw: a.strideW, pad_top: pad.top, pad_left: pad.left,
                                        oh: y.shape[1], ow: y.shape[2])
        mk_avgpool_s8_path(path, &geometry, pad.bottom, pad.right, a.countIncludePad ? 1 : 0, x.zeroPoint, y.zeroPoint,
                           x.data, y.data)
    }
}
