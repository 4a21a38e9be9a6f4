#ifndef MODELKIT_KERNELS_H
#define MODELKIT_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Micro-kernel families. The numeric order is the order of preference.
typedef enum {
    MK_KERNELS_PORTABLE = 0,
    MK_KERNELS_AVX2 = 1,
    MK_KERNELS_AVX512 = 2,
} mk_kernel_path;

/// The best path this CPU supports (ignores MODELKIT_KERNELS).
int mk_kernels_best_supported(void);

/// `requested` clamped to what the CPU supports (a request above the best supported path
/// falls back to the best supported one).
int mk_kernels_clamp(int requested);

/// The path `mk_sgemm` uses: chosen once, on first use, from the CPU and the environment
/// variable MODELKIT_KERNELS=portable|avx2|avx512 (clamped to what the CPU supports).
int mk_kernels_active(void);

/// The path named by a MODELKIT_KERNELS value ("portable", "avx2", "avx512"), unclamped;
/// -1 for NULL or any other text (which leaves automatic selection in place).
int mk_kernels_from_name(const char *name);

/// "portable", "avx2" or "avx512".
const char *mk_kernels_path_name(int path);

/// Row-major single-precision GEMM: C = alpha * op(A) * op(B) + beta * C, where op(A) is
/// M x K and op(B) is K x N. `trans_a` != 0 means A is stored K x M (op(A) = A^T);
/// `trans_b` != 0 means B is stored N x K. lda/ldb/ldc are row strides in elements of the
/// matrices as stored. When beta == 0, C is not read (NaNs in C do not propagate).
/// Any of M, N, K may be 0. Thread-safe: packing buffers are per thread.
void mk_sgemm(int trans_a, int trans_b, long m, long n, long k, float alpha,
              const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc);

/// The same with an explicit path (clamped to what the CPU supports), for tests and benchmarks.
void mk_sgemm_path(int path, int trans_a, int trans_b, long m, long n, long k, float alpha,
                   const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc);

/// C = op(A) * op(B) + bias (bias[j] added to column j; NULL for none), then max(C, 0) when
/// `relu` != 0. C is not read. The bias and clamp are applied to each output tile as soon as it is
/// final, while it is in L1 (no extra pass over C). `path` is clamped like mk_sgemm_path.
void mk_sgemm_bias_relu(int path, int trans_a, int trans_b, long m, long n, long k, const float *a, long lda,
                        const float *b, long ldb, float *c, long ldc, const float *bias, int relu);

/// The rows of an N x K weight matrix (one row per output, ldw apart) as column panels of `width`
/// outputs: panel j0 / width starts at packed + j0 * k and holds, for each depth p, `width`
/// consecutive values w[j0 + j][p], zero past n. ceil(n / width) * width * k floats. `path` only
/// picks the instructions (clamped to the CPU); every path writes the same bytes.
void mk_pack_weight_panels(int path, long n, long k, const float *w, long ldw, long width, float *packed);

/// The rows of an N x K int8 matrix (ldb apart) widened to int16 depth pairs in panels of `width`
/// outputs: panel j0 / width starts at packed + j0 * 2 * ceil(k / 2) and holds, for each pair q,
/// `width` units (w[j][2q], w[j][2q + 1]), zero past n and past k. Same bytes on every path.
void mk_pack_int8_pair_panels(int path, long n, long k, const int8_t *b, long ldb, long width, int16_t *packed);

/// Weights packed once for mk_sgemm_packed: B stored N x K (one row per output, ldb apart) laid
/// out as the micro-kernel of `path` reads it. `mk_sgemm_packed_b_count` floats (64-byte aligned
/// storage recommended); the layout depends on the path, so pack and multiply with the same one.
long mk_sgemm_packed_b_count(int path, long n, long k);
void mk_sgemm_pack_b(int path, long n, long k, const float *b, long ldb, float *packed);

/// C = A * B^T + bias, then max(C, 0) when relu != 0, with B from mk_sgemm_pack_b (same path).
/// A is M x K row-major (lda apart); C is not read.
void mk_sgemm_packed(int path, long m, long n, long k, const float *a, long lda, const float *packed_b, float *c,
                     long ldc, const float *bias, int relu);
/// The same with a clamp to [lo, hi] after the bias when clamp != 0 (ReLU6: 0, 6; ReLU: 0, +inf),
/// as `v > lo ? v : lo` then `v < hi ? v : hi`.
void mk_sgemm_packed_clamp(int path, long m, long n, long k, const float *a, long lda, const float *packed_b, float *c,
                           long ldc, const float *bias, int clamp, float lo, float hi);
/// As mk_sgemm_packed_clamp, but C holds a residual on entry that the product adds to:
/// C = clamp(A * B^T + C + bias) (a convolution fused with the residual Add after it).
void mk_sgemm_packed_accumulate_clamp(int path, long m, long n, long k, const float *a, long lda, const float *packed_b,
                                      float *c, long ldc, const float *bias, int clamp, float lo, float hi);

/// The shape of an NHWC convolution window walk, for one image: input h x w x c, kernel kh x kw,
/// strides, dilations, top/left padding, output oh x ow.
typedef struct {
    long h, w, c, kh, kw, sh, sw, dh, dw, pad_top, pad_left, oh, ow;
} mk_conv_geometry;

/// Rows [p0, p1) of the im2col matrix of one NHWC image: row p (written at columns + (p - p0) *
/// kh*kw*c) holds the window of output pixel p in (ky, kx, channel) order, `pad` outside the input.
void mk_im2col_f32(const mk_conv_geometry *g, const float *image, long p0, long p1, float pad, float *columns);
void mk_im2col_i8(const mk_conv_geometry *g, const int8_t *image, long p0, long p1, int8_t pad, int8_t *columns);

/// Winograd F(tile x tile, 3x3), tile 2 or 4, for a stride-1, undilated 3x3 convolution of one
/// NHWC image (g->kh = kw = 3): tile x tile output tiles, row-major, `mk_winograd_tiles` of them,
/// each multiplied through a = tile + 2 squared matrices (16 or 36).
long mk_winograd_tiles(int tile, long oh, long ow);
/// 0 when the environment sets MODELKIT_WINOGRAD=0 (plans then multiply the im2col rows instead,
/// for comparisons), else 1.
int mk_winograd_enabled(void);
/// 2 or 4 when the environment sets MODELKIT_WINOGRAD to that tile size (every Winograd layer then
/// uses it, for comparisons), else 0 (the plan picks per layer).
int mk_winograd_forced_tile(void);
/// The [O, 3, 3, C] weight as a*a matrices [a*a][O][C] (G g Gt), each for mk_sgemm_pack_b.
void mk_winograd_weights(int tile, long o, long c, const float *weight, float *transformed);
/// Tiles [t0, t1) of the image transformed (Bt d B; padding reads zeros) into the a*a matrices
/// V[e] = [t1 - t0][C], `stride` floats apart from `v` on.
void mk_winograd_input(int path, int tile, const mk_conv_geometry *g, const float *image, long t0, long t1, float *v,
                       long stride);
/// Tiles [t0, t1) of the a*a products M[e] = V[e] x U[e]t (`stride` floats apart from `m` on,
/// tile rows `ld` apart, `n` columns each) folded into the image's [oh, ow, ld] output `out` (At M
/// A; pixels `ld` apart, `n` channels each), plus bias (n values, may be NULL), clamped like
/// mk_sgemm_packed_clamp; only output pixels (row-major index) in [p0, p1) are written. Offset m,
/// out and bias by j0 for output channels [j0, j0 + n).
void mk_winograd_output(int path, int tile, const mk_conv_geometry *g, long n, long ld, const float *m, long stride,
                        long t0, long t1, long p0, long p1, const float *bias, int clamp, float lo, float hi,
                        float *out);

/// The shape of an NHWC pooling: batch n, input h x w x c, window kh x kw, strides, top/left
/// padding, output oh x ow.
typedef struct {
    long n, h, w, c, kh, kw, sh, sw, pad_top, pad_left, oh, ow;
} mk_pool_geometry;

/// Max pooling with padded cells ignored (every window must hold a real cell). Float: a value
/// replaces the running max only when greater (NaN never does), starting from -infinity.
void mk_maxpool_f32(const mk_pool_geometry *g, const float *x, float *y);
void mk_maxpool_f32_path(int path, const mk_pool_geometry *g, const float *x, float *y);
void mk_maxpool_i8(const mk_pool_geometry *g, const int8_t *x, int8_t *y);
void mk_maxpool_i8_path(int path, const mk_pool_geometry *g, const int8_t *x, int8_t *y);

/// int8 average pooling (global average pooling is one window over the image): the sum of
/// (q - x_zero) over the window's real cells divided by their count — or, with count_include_pad,
/// by the window's cells inside the input padded by pad_top/left (geometry) and pad_bottom/right —
/// rounded to nearest (ties away from zero), plus y_zero, clamped. Identical on every path.
void mk_avgpool_s8(const mk_pool_geometry *g, long pad_bottom, long pad_right, int count_include_pad,
                   int32_t x_zero, int32_t y_zero, const int8_t *x, int8_t *y);
void mk_avgpool_s8_path(int path, const mk_pool_geometry *g, long pad_bottom, long pad_right, int count_include_pad,
                        int32_t x_zero, int32_t y_zero, const int8_t *x, int8_t *y);

/// ReLU backward fused with the bias gradient: dst[i] = out[i] > 0 ? dy[i] : 0 over a row-major
/// rows x cols matrix (`out` is the ReLU output; dst must not overlap dy or out). When `column_sums` is not NULL
/// it receives the column sums of dst, added in float over blocks of 64 rows and across blocks in
/// double (the order of ModelKitTraining's ColumnSums, so results do not depend on the caller).
void mk_relu_backward_column_sums(long rows, long cols, const float *dy, const float *out, float *dst,
                                  float *column_sums);

/// Column sums of a row-major rows x cols matrix in the same order (float blocks of 64 rows,
/// blocks added in double).
void mk_column_sums(long rows, long cols, const float *x, float *column_sums);

/// One Adam/AdamW update of `count` values, exactly the ModelKitTraining formula, in its order,
/// without contracting into FMAs (the result equals the scalar Swift loop bit for bit):
///   w -= decay*w (when decay != 0); g' = g*clip + l2*w; m += (g' - m)*one_minus_b1;
///   v += (g'*g' - v)*one_minus_b2; w -= alpha*m / (sqrt(v) + eps).
void mk_adam_update(long count, float *w, const float *g, float *m, float *v, float clip, float l2, float decay,
                    float one_minus_b1, float one_minus_b2, float alpha, float eps);

/// The same column sums split into independent 64-row blocks, so callers can spread blocks over
/// threads and still get the serial result: mk_relu_mask_block_sums writes the float sums of
/// blocks [block0, block1) to block_sums[block * cols + j] (masking dy into dst when `out` is not
/// NULL; plain sums of dy otherwise), then mk_sum_blocks adds all blocks in order in double.
long mk_sum_block_count(long rows);
void mk_relu_mask_block_sums(long rows, long cols, long block0, long block1, const float *dy, const float *out,
                             float *dst, float *block_sums);
void mk_sum_blocks(long blocks, long cols, const float *block_sums, float *column_sums);

/// 2x2 stride-2 unpadded max pooling of samples [n0, n1) of an NHWC batch (h, w per sample; odd
/// trailing rows/columns are dropped). `arg` (may be NULL) receives the flat input index of each
/// maximum, the first one in scan order on ties. Flat indices must fit in int32.
void mk_maxpool2x2_forward(long n0, long n1, long h, long w, long c, const float *x, float *y, int32_t *arg);

/// Its backward for samples [n0, n1): writes every dx value of those samples (dy at each window's
/// argmax, zero elsewhere, including dropped rows/columns), so dx needs no zero-fill first.
void mk_maxpool2x2_backward(long n0, long n1, long h, long w, long c, const float *dy, const int32_t *arg,
                            float *dx);

/// Direct convolution of single-channel NHW inputs (stride 1, no padding, no dilation) for
/// samples [n0, n1): weight [o][kh][kw], output [n][h-kh+1][w-kw+1][o]. Only for shapes where
/// mk_conv1ch_supported(kh, kw, o) is nonzero.
int mk_conv1ch_supported(long kh, long kw, long o);
/// y = conv(x) + bias (NULL for none), then max(y, 0) when relu != 0.
void mk_conv1ch_forward(long n0, long n1, long h, long w, long kh, long kw, long o, const float *x,
                        const float *weight, const float *bias, int relu, float *y);
/// The weight gradient of samples [n0, n1) written (not added) to dw [o][kh][kw].
void mk_conv1ch_weight_gradient(long n0, long n1, long h, long w, long kh, long kw, long o, const float *x,
                                const float *dy, float *dw);
/// The input gradient of samples [n0, n1) written (not added) to their part of dx [n][h][w].
void mk_conv1ch_input_gradient(long n0, long n1, long h, long w, long kh, long kw, long o, const float *dy,
                               const float *weight, float *dx);

/// A part of a parallel loop: called once per part index in [0, parts).
typedef void (*mk_parallel_body)(void *context, long part);

/// Runs body(context, part) for every part in [0, parts) on a persistent pool of `threads - 1`
/// workers plus the caller, and returns when all parts are done. Workers spin briefly between
/// calls, then sleep on a futex. Parts may run in any order on any thread, so each must write
/// disjoint memory and compute the same result wherever it runs. Runs inline when threads <= 1,
/// when called from inside a part, or while another thread is using the pool. The worker count
/// is fixed by the first call. Linux only; elsewhere always inline.
void mk_parallel_run(int threads, long parts, mk_parallel_body body, void *context);

/// Requantization of int32 sums to int8 per output channel j: bias[j] added (NULL: none), then
/// gemmlowp's multiply by multiplier[j] (Q31, > 0) and 2^shift[j], plus the output zero point,
/// clamped to [minimum, maximum].
typedef struct {
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t output_zero_point, minimum, maximum;
} mk_requantization;

/// Pairs of depth values the packed int8 GEMM works in: ceil(k / 2). Left-matrix rows hold
/// 2 * pairs int16 values (a zero after an odd k).
long mk_igemm_depth_pairs(long k);
/// int16 values of an N x K int8 weight (one row per output, ldb apart) packed for the GEMM below.
long mk_igemm_packed_b_count(long n, long k);
void mk_igemm_pack_b(long n, long k, const int8_t *b, long ldb, int16_t *packed);

/// C[i][j] = requantize(sum_p A[i][p] * B[j][p]) as int8, where A holds int8 codes minus their
/// zero point as int16 (M rows, lda apart, padded to an even depth with zeros) and B is packed by
/// mk_igemm_pack_b. Exact integer arithmetic: every path gives identical results. Paths: AVX-512
/// VNNI (when the CPU has it besides AVX-512F), AVX2, portable C.
void mk_igemm_requantize(long m, long n, long k, const int16_t *a, long lda, const int16_t *packed_b,
                         const mk_requantization *r, int8_t *c, long ldc);
void mk_igemm_requantize_path(int path, long m, long n, long k, const int16_t *a, long lda, const int16_t *packed_b,
                              const mk_requantization *r, int8_t *c, long ldc);

/// Left-matrix rows for it: y[i][p] = x[i][p] - zero_point for p < k, zeros up to ldy.
void mk_widen_rows_i8(long rows, long k, const int8_t *x, long ldx, int32_t zero_point, int16_t *y, long ldy);
/// im2col rows [p0, p1) of one int8 NHWC image as (code - zero_point) int16, ldc apart (zeros
/// for padded cells, which hold the zero point, and after the depth).
void mk_im2col_i8_widen(const mk_conv_geometry *g, const int8_t *image, long p0, long p1, int32_t zero_point,
                        int16_t *columns, long ldc);
/// The same on a chosen path (MK_KERNELS_*; clamped to what the CPU has). Identical on every path.
void mk_im2col_i8_widen_path(int path, const mk_conv_geometry *g, const int8_t *image, long p0, long p1,
                             int32_t zero_point, int16_t *columns, long ldc);

/// Direct int8 convolution (conv_direct_s8.c): the int8 GEMM above with each output pixel's window
/// read in place from widened input rows instead of an im2col matrix. The rows are the input's
/// padded rows (padded row y is image row y - pad_top; columns likewise), as (code - zero point)
/// int16 with zeros for padding, `mk_conv_s8_direct_padded_width` pixels of c values each; a
/// window is walked as runs of contiguous values, each read as int16 pairs.
long mk_conv_s8_direct_padded_height(const mk_conv_geometry *g);
long mk_conv_s8_direct_padded_width(const mk_conv_geometry *g);
/// int16 values a buffer of `rows` widened rows takes (two values of slack after them).
long mk_conv_s8_direct_rows_count(const mk_conv_geometry *g, long rows);
/// Padded rows [y0, y1) of one int8 NHWC image widened into `rows` (mk_conv_s8_direct_rows_count
/// values for y1 - y0 rows). Identical on every path.
void mk_conv_s8_direct_widen(int path, const mk_conv_geometry *g, const int8_t *image, int32_t zero_point, long y0,
                             long y1, int16_t *rows);
/// Pairs per window, and the int16 values of an [n][kh][kw][c] int8 weight packed for the walk.
long mk_conv_s8_direct_pairs(const mk_conv_geometry *g);
long mk_conv_s8_direct_packed_count(const mk_conv_geometry *g, long n);
void mk_conv_s8_direct_pack(const mk_conv_geometry *g, long n, const int8_t *weight, int16_t *packed);
/// Output pixels [p0, p1) of one image, n columns from a 16-column panel boundary (`packed` and `r`
/// offset to it as for mk_igemm_requantize: packed + j0 * 2 * pairs), written `ldc` apart from
/// `out`. `rows` holds widened padded rows from y0 on, covering every window of those pixels.
/// Exact integer sums requantized like mk_igemm_requantize: identical on every path.
void mk_conv_s8_direct(int path, const mk_conv_geometry *g, const int16_t *rows, long y0, long p0, long p1, long n,
                       const int16_t *packed, const mk_requantization *r, int8_t *out, long ldc);

/// A max pooling of a direct convolution's output (rows and columns of conv output pixels):
/// kh x kw windows at strides sh x sw that do not overlap (sh >= kh, sw >= kw), no padding,
/// oh x ow pooled pixels.
typedef struct {
    long kh, kw, sh, sw, oh, ow;
} mk_pool_window;
/// Whether mk_conv_s8_direct_maxpool serves this pooling of this convolution.
int mk_conv_s8_direct_maxpool_supported(const mk_conv_geometry *g, const mk_pool_window *pool);
/// mk_conv_s8_direct followed by the max pooling, for pooled pixels [q0, q1) of one image (written
/// `ldc` apart from `out`): equal to pooling the convolution's int8 output, since the requantization
/// is monotonic, but each window's sums are requantized once and uncovered pixels are skipped.
/// `rows` must cover every window of the conv pixels those pooled pixels read.
void mk_conv_s8_direct_maxpool(int path, const mk_conv_geometry *g, const mk_pool_window *pool, const int16_t *rows,
                               long y0, long q0, long q1, long n, const int16_t *packed, const mk_requantization *r,
                               int8_t *out, long ldc);

/// One spin-wait pause (x86 `pause`; nothing elsewhere): lets the sibling hyperthread run and
/// saves power while a thread polls a flag that another thread is about to set.
static inline void mk_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/// The geometry of a depthwise convolution (channel multiplier 1) of NHWC images: input h x w x c,
/// a kh x kw window with strides, dilations and the top/left padding, output oh x ow x c.
typedef struct {
    long h, w, c, kh, kw, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left, oh, ow;
} mk_depthwise_geometry;

/// Depthwise convolution of output rows [row0, row1) (row = image * oh + oy) of an NHWC batch:
/// y = clamp(bias + sum over taps of x * weight, lo, hi), weight stored [kh][kw][c], bias [c] or
/// NULL. Taps in the padding contribute nothing. `path` is clamped like mk_sgemm_path.
void mk_depthwise_conv2d(int path, const mk_depthwise_geometry *g, long row0, long row1, const float *x,
                         const float *weight, const float *bias, float lo, float hi, float *y);

/// An int8 depthwise convolution requantizes its int32 sums exactly as the GEMM does.
typedef mk_requantization mk_depthwise_s8_output;

/// What the AVX2 int8 depthwise kernel needs for pixels whose window lies inside the image: the
/// weights as int16 pairs of consecutive taps, [(taps+1)/2][c][2] (an odd last tap paired with 0),
/// and per channel bias - x_zero * (sum of the channel's weights).
typedef struct {
    const int16_t *pairs;
    const int32_t *bias;
    /// Requantization constants prepared by mk_depthwise_s8_prepare_lanes, or NULL (then they are
    /// loaded and applied per pixel in two roundings).
    const void *lanes;
} mk_depthwise_s8_interior;

/// Bytes (in 32-byte aligned storage) of the prepared requantization constants of `c` channels.
long mk_depthwise_s8_lanes_bytes(long c);
/// Prepares them from `r` for the AVX2 interior kernel: 1 when done, 0 when this CPU lacks AVX2 or
/// a shift is outside the vector requantization's range (leave `lanes` NULL then).
int mk_depthwise_s8_prepare_lanes(long c, const mk_depthwise_s8_output *r, void *lanes);

/// int16 values of the `pairs` of mk_depthwise_s8_interior.
long mk_depthwise_s8_pairs_count(long taps, long c);

/// Fills `pairs` (mk_depthwise_s8_pairs_count values) and `interior_bias` (c values) from the
/// weight [taps][c] and the bias [c] (or NULL) for input zero point `x_zero`.
void mk_depthwise_s8_pack_interior(long taps, long c, const int8_t *weight, const int32_t *bias, int32_t x_zero,
                                   int16_t *pairs, int32_t *interior_bias);

/// int8 depthwise convolution of output rows [row0, row1): the exact sum of (x - x_zero) * weight
/// over the taps inside the image (weight int8 [kh][kw][c]), requantized by `r` into y.
/// `interior` (or NULL) enables the faster AVX2 kernel for pixels away from the edges.
/// Every path gives identical results.
void mk_depthwise_conv2d_s8(int path, const mk_depthwise_geometry *g, long row0, long row1, const int8_t *x,
                            int32_t x_zero, const int8_t *weight, const mk_depthwise_s8_output *r,
                            const mk_depthwise_s8_interior *interior, int8_t *y);

/// The fixed-point constants of an int8 addition (ModelKitRuntime's AddRequantization).
typedef struct {
    int32_t zero_point1, zero_point2, left_shift;
    int32_t multiplier1, shift1, multiplier2, shift2, output_multiplier, output_shift;
    int32_t output_zero_point, minimum, maximum;
} mk_add_s8_params;

/// y[i] = int8 a[i] + b[i] for `count` values of two same-shaped tensors, bit-exact with
/// Int8ReferenceKernels.add. `path` is clamped like mk_sgemm_path.
void mk_add_s8(int path, long count, const int8_t *a, const int8_t *b, const mk_add_s8_params *p, int8_t *y);

/// Row GEMM for small layers (rowgemm.c): C = A * W^T + bias, clamped to [lo, hi] when clamp != 0
/// (as `v > lo ? v : lo` then `v < hi ? v : hi`), with every row of A read in place. W (N x K,
/// ldw apart) is packed once into `mk_rowgemm_packed_count` floats of 16-column panels, the same
/// layout on every path; a column range starting at a multiple of 16, j0, is `packed + j0 * k`.
long mk_rowgemm_packed_count(long n, long k);
void mk_rowgemm_pack(long n, long k, const float *w, long ldw, float *packed);
/// A Dense layer: A is M x K row-major (lda apart); C (ldc apart) is not read.
void mk_rowgemm_dense(int path, long m, long n, long k, const float *a, long lda, const float *packed,
                      const float *bias, int clamp, float lo, float hi, float *c, long ldc);
/// One tile of a window GEMM (conv_windows.c): `rows` (1-6) output pixels, pixel i's depth values
/// at a + i*ars + segments[s] + t for s < segment_count, t < segment_length (in that order), times
/// a 16-column panel of weights packed by mk_sgemm_pack_b on `path` (portable or AVX2), `cols`
/// (1-16) of whose columns are written to c (ldc apart), plus bias[j] when not NULL, then clamped
/// to [lo, hi] when `clamp`.
void mk_sgemm_window_tile(int path, long rows, const float *a, long ars, const long *segments, long segment_count,
                          long segment_length, const float *packed_panel, long cols, float *c, long ldc,
                          const float *bias, int clamp, float lo, float hi);
/// Whether mk_conv_windows_f32 serves a convolution: a window of at most 320 values.
int mk_conv_windows_supported(const mk_conv_geometry *g);
/// Floats of band scratch mk_conv_windows_f32 needs for a run of up to `pixels` output pixels.
long mk_conv_windows_scratch_count(const mk_conv_geometry *g, long pixels);
/// Output pixels [p0, p1) of one NHWC image of a groups-1 convolution whose [O, kH, kW, C] weight
/// (k = kh*kw*c, n = O) is packed by mk_sgemm_pack_b on `path` (portable or AVX2: 16-column panels),
/// the bias and clamp as mk_sgemm_packed_clamp's, with no im2col matrix: the windows are read from
/// a zero-padded copy of the input rows they cover, made in `band`. `out` is pixel p0's row.
void mk_conv_windows_f32(int path, const mk_conv_geometry *g, const float *image, long p0, long p1, long n,
                         const float *packed, const float *bias, int clamp, float lo, float hi, float *band,
                         float *out);
/// Whether mk_conv_direct_f32 serves a convolution: no padding and no dilation along the width.
int mk_conv_direct_supported(const mk_conv_geometry *g);
/// Output pixels [p0, p1) of one NHWC image of a groups-1 convolution with the [O, kH, kW, C]
/// weight packed by mk_rowgemm_pack (k = kh*kw*c); `out` is pixel p0's row of n outputs.
void mk_conv_direct_f32(int path, const mk_conv_geometry *g, const float *image, long p0, long p1, long n,
                        const float *packed, const float *bias, int clamp, float lo, float hi, float *out);

/// y[i] = clamp(round(x[i] / scale) + zero_point, -128, 127), rounding half away from zero (NaN
/// to -128), bit-exact with Int8ReferenceKernels.quantize. `path` is clamped like mk_sgemm_path.
void mk_quantize_s8(int path, long count, const float *x, float scale, int32_t zero_point, int8_t *y);

/// glibc only: keep freed blocks below 32 MB in the heap (no mmap/munmap, no trimming), so a
/// training loop's per-step activation buffers stop costing page faults. Process-wide; returns 1
/// when applied, 0 elsewhere.
int mk_retain_freed_memory(void);

#ifdef __cplusplus
}
#endif

#endif
