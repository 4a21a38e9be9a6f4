// Direct convolution for single-channel inputs (the first layer of an image CNN), stride 1, no
// padding or dilation. im2col + GEMM is poor here: K = kh*kw is tiny (9), so the GEMM spends its
// time storing tiles and the column matrix is 9x the input. Directly: per output pixel, kh*kw
// broadcasts of the input times rows of the transposed weight.
#include "modelkit_kernels.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

// Limits keep the transposed weight and the accumulators small enough for any thread's stack.
enum { MAX_TAPS = 49, MAX_OUT = 64 };

// weight [o][taps] -> [taps][o], so one tap's output channels are contiguous.
static void transpose_weight(long o, long taps, const float *weight, float *wt) {
    for (long oc = 0; oc < o; oc++)
        for (long t = 0; t < taps; t++) wt[t * o + oc] = weight[oc * taps + t];
}

static void forward_portable(long n0, long n1, long h, long w, long kh, long kw, long o, const float *x,
                             const float *wt, const float *bias, int relu, float *y) {
    const long oh = h - kh + 1, ow = w - kw + 1;
    for (long s = n0; s < n1; s++) {
        const float *sample = x + s * h * w;
        for (long oy = 0; oy < oh; oy++) {
            for (long ox = 0; ox < ow; ox++) {
                float *out = y + ((s * oh + oy) * ow + ox) * o;
                for (long oc = 0; oc < o; oc++) out[oc] = 0.0f;
                for (long ky = 0; ky < kh; ky++)
                    for (long kx = 0; kx < kw; kx++) {
                        const float v = sample[(oy + ky) * w + ox + kx];
                        const float *row = wt + (ky * kw + kx) * o;
                        for (long oc = 0; oc < o; oc++) out[oc] += v * row[oc];
                    }
                for (long oc = 0; oc < o; oc++) {
                    float v = out[oc];
                    if (bias != NULL) v += bias[oc];
                    if (relu) v = v > 0.0f ? v : 0.0f;
                    out[oc] = v;
                }
            }
        }
    }
}

// o == 32: two pixels at a time, eight ymm accumulators that share each tap's four weight
// vectors; bias and ReLU applied before the single store. The taps run as ky, kx loops (no
// division per tap), unrolled when the kernel is 3 x 3 (KH, KW constant after inlining).
__attribute__((target("avx2,fma"), always_inline))
static inline void pixels_avx2_o32(const long KH, const long KW, const float *in, long w, const float *wt,
                                   const __m256 *b, int relu, float *out, long count) {
    const __m256 zero = _mm256_setzero_ps();
    long ox = 0;
    for (; ox + 2 <= count; ox += 2) {
        __m256 p0 = zero, p1 = zero, p2 = zero, p3 = zero, q0 = zero, q1 = zero, q2 = zero, q3 = zero;
        for (long ky = 0; ky < KH; ky++)
            for (long kx = 0; kx < KW; kx++) {
                const float *row = wt + (ky * KW + kx) * 32;
                const __m256 w0 = _mm256_loadu_ps(row), w1 = _mm256_loadu_ps(row + 8);
                const __m256 w2 = _mm256_loadu_ps(row + 16), w3 = _mm256_loadu_ps(row + 24);
                const __m256 u = _mm256_broadcast_ss(in + ky * w + ox + kx);
                const __m256 v = _mm256_broadcast_ss(in + ky * w + ox + kx + 1);
                p0 = _mm256_fmadd_ps(u, w0, p0), p1 = _mm256_fmadd_ps(u, w1, p1);
                p2 = _mm256_fmadd_ps(u, w2, p2), p3 = _mm256_fmadd_ps(u, w3, p3);
                q0 = _mm256_fmadd_ps(v, w0, q0), q1 = _mm256_fmadd_ps(v, w1, q1);
                q2 = _mm256_fmadd_ps(v, w2, q2), q3 = _mm256_fmadd_ps(v, w3, q3);
            }
        p0 = _mm256_add_ps(p0, b[0]), p1 = _mm256_add_ps(p1, b[1]), p2 = _mm256_add_ps(p2, b[2]), p3 = _mm256_add_ps(p3, b[3]);
        q0 = _mm256_add_ps(q0, b[0]), q1 = _mm256_add_ps(q1, b[1]), q2 = _mm256_add_ps(q2, b[2]), q3 = _mm256_add_ps(q3, b[3]);
        if (relu) {  // max(x, 0) gives +0 for NaN and ±0, like x > 0 ? x : 0.
            p0 = _mm256_max_ps(p0, zero), p1 = _mm256_max_ps(p1, zero), p2 = _mm256_max_ps(p2, zero), p3 = _mm256_max_ps(p3, zero);
            q0 = _mm256_max_ps(q0, zero), q1 = _mm256_max_ps(q1, zero), q2 = _mm256_max_ps(q2, zero), q3 = _mm256_max_ps(q3, zero);
        }
        float *o = out + ox * 32;
        _mm256_storeu_ps(o, p0), _mm256_storeu_ps(o + 8, p1), _mm256_storeu_ps(o + 16, p2), _mm256_storeu_ps(o + 24, p3);
        _mm256_storeu_ps(o + 32, q0), _mm256_storeu_ps(o + 40, q1), _mm256_storeu_ps(o + 48, q2), _mm256_storeu_ps(o + 56, q3);
    }
    for (; ox < count; ox++) {
        __m256 p0 = zero, p1 = zero, p2 = zero, p3 = zero;
        for (long ky = 0; ky < KH; ky++)
            for (long kx = 0; kx < KW; kx++) {
                const float *row = wt + (ky * KW + kx) * 32;
                const __m256 u = _mm256_broadcast_ss(in + ky * w + ox + kx);
                p0 = _mm256_fmadd_ps(u, _mm256_loadu_ps(row), p0), p1 = _mm256_fmadd_ps(u, _mm256_loadu_ps(row + 8), p1);
                p2 = _mm256_fmadd_ps(u, _mm256_loadu_ps(row + 16), p2), p3 = _mm256_fmadd_ps(u, _mm256_loadu_ps(row + 24), p3);
            }
        p0 = _mm256_add_ps(p0, b[0]), p1 = _mm256_add_ps(p1, b[1]), p2 = _mm256_add_ps(p2, b[2]), p3 = _mm256_add_ps(p3, b[3]);
        if (relu)
            p0 = _mm256_max_ps(p0, zero), p1 = _mm256_max_ps(p1, zero), p2 = _mm256_max_ps(p2, zero), p3 = _mm256_max_ps(p3, zero);
        float *o = out + ox * 32;
        _mm256_storeu_ps(o, p0), _mm256_storeu_ps(o + 8, p1), _mm256_storeu_ps(o + 16, p2), _mm256_storeu_ps(o + 24, p3);
    }
}

__attribute__((target("avx2,fma")))
static void forward_avx2_o32(long n0, long n1, long h, long w, long kh, long kw, const float *x, const float *wt,
                             const float *bias, int relu, float *y) {
    const long oh = h - kh + 1, ow = w - kw + 1;
    __m256 b[4];
    for (int v = 0; v < 4; v++) b[v] = bias != NULL ? _mm256_loadu_ps(bias + 8 * v) : _mm256_setzero_ps();
    for (long s = n0; s < n1; s++) {
        for (long oy = 0; oy < oh; oy++) {
            const float *in = x + (s * h + oy) * w;
            float *out = y + (s * oh + oy) * ow * 32;
            if (kh == 3 && kw == 3) pixels_avx2_o32(3, 3, in, w, wt, b, relu, out, ow);
            else pixels_avx2_o32(kh, kw, in, w, wt, b, relu, out, ow);
        }
    }
}

void mk_conv1ch_forward(long n0, long n1, long h, long w, long kh, long kw, long o, const float *x,
                        const float *weight, const float *bias, int relu, float *y) {
    const long taps = kh * kw;
    if (n1 <= n0 || o <= 0 || taps <= 0 || taps > MAX_TAPS || o > MAX_OUT) {
        if (n1 > n0 && o > 0 && taps > 0) abort();  // Callers check mk_conv1ch_supported first.
        return;
    }
    float wt[MAX_TAPS * MAX_OUT];
    transpose_weight(o, taps, weight, wt);
    if (o == 32 && mk_kernels_active() >= MK_KERNELS_AVX2)
        forward_avx2_o32(n0, n1, h, w, kh, kw, x, wt, bias, relu, y);
    else
        forward_portable(n0, n1, h, w, kh, kw, o, x, wt, bias, relu, y);
}

int mk_conv1ch_supported(long kh, long kw, long o) { return kh * kw <= MAX_TAPS && o <= MAX_OUT && kh >= 1 && kw >= 1; }

// dW[oc][t] over samples [n0, n1): per sample, products are summed in float per tap; samples are
// then added into dw in order (two levels keep long batches precise). dw is overwritten.
static void weight_gradient_portable(long n0, long n1, long h, long w, long kh, long kw, long o, const float *x,
                                     const float *dy, float *dw) {
    const long oh = h - kh + 1, ow = w - kw + 1, taps = kh * kw;
    memset(dw, 0, (size_t)(o * taps) * sizeof(float));
    float acc[MAX_TAPS * MAX_OUT];
    for (long s = n0; s < n1; s++) {
        memset(acc, 0, (size_t)(o * taps) * sizeof(float));
        const float *sample = x + s * h * w;
        for (long oy = 0; oy < oh; oy++)
            for (long ox = 0; ox < ow; ox++) {
                const float *g = dy + ((s * oh + oy) * ow + ox) * o;
                for (long t = 0; t < taps; t++) {
                    const long ky = t / kw, kx = t - ky * kw;
                    const float v = sample[(oy + ky) * w + ox + kx];
                    for (long oc = 0; oc < o; oc++) acc[t * o + oc] += v * g[oc];
                }
            }
        for (long t = 0; t < taps; t++)
            for (long oc = 0; oc < o; oc++) dw[oc * taps + t] += acc[t * o + oc];
    }
}

// o == 32: taps in groups of 3 (12 accumulators), one pass over the sample's gradient per group.
__attribute__((target("avx2,fma")))
static void weight_gradient_avx2_o32(long n0, long n1, long h, long w, long kh, long kw, const float *x,
                                     const float *dy, float *dw) {
    const long oh = h - kh + 1, ow = w - kw + 1, taps = kh * kw;
    memset(dw, 0, (size_t)(32 * taps) * sizeof(float));
    for (long s = n0; s < n1; s++) {
        const float *sample = x + s * h * w;
        for (long t0 = 0; t0 < taps; t0 += 3) {
            const long group = taps - t0 < 3 ? taps - t0 : 3;
            long offset[3];
            for (long e = 0; e < 3; e++) {
                const long t = t0 + (e < group ? e : 0);
                offset[e] = (t / kw) * w + t % kw;
            }
            __m256 acc[3][4];
            for (int e = 0; e < 3; e++)
                for (int v = 0; v < 4; v++) acc[e][v] = _mm256_setzero_ps();
            for (long oy = 0; oy < oh; oy++) {
                for (long ox = 0; ox < ow; ox++) {
                    const float *g = dy + ((s * oh + oy) * ow + ox) * 32;
                    const __m256 g0 = _mm256_loadu_ps(g), g1 = _mm256_loadu_ps(g + 8);
                    const __m256 g2 = _mm256_loadu_ps(g + 16), g3 = _mm256_loadu_ps(g + 24);
                    const float *base = sample + oy * w + ox;
#pragma clang loop unroll(full)
                    for (int e = 0; e < 3; e++) {
                        const __m256 v = _mm256_broadcast_ss(base + offset[e]);
                        acc[e][0] = _mm256_fmadd_ps(v, g0, acc[e][0]);
                        acc[e][1] = _mm256_fmadd_ps(v, g1, acc[e][1]);
                        acc[e][2] = _mm256_fmadd_ps(v, g2, acc[e][2]);
                        acc[e][3] = _mm256_fmadd_ps(v, g3, acc[e][3]);
                    }
                }
            }
            for (long e = 0; e < group; e++) {
                float lanes[32];
                for (int v = 0; v < 4; v++) _mm256_storeu_ps(lanes + 8 * v, acc[e][v]);
                for (long oc = 0; oc < 32; oc++) dw[oc * taps + t0 + e] += lanes[oc];
            }
        }
    }
}

void mk_conv1ch_weight_gradient(long n0, long n1, long h, long w, long kh, long kw, long o, const float *x,
                                const float *dy, float *dw) {
    if (o <= 0) return;
    if (!mk_conv1ch_supported(kh, kw, o)) abort();  // Callers check mk_conv1ch_supported first.
    if (o == 32 && mk_kernels_active() >= MK_KERNELS_AVX2)
        weight_gradient_avx2_o32(n0, n1, h, w, kh, kw, x, dy, dw);
    else
        weight_gradient_portable(n0, n1, h, w, kh, kw, o, x, dy, dw);
}

void mk_conv1ch_input_gradient(long n0, long n1, long h, long w, long kh, long kw, long o, const float *dy,
                               const float *weight, float *dx) {
    const long oh = h - kh + 1, ow = w - kw + 1, taps = kh * kw;
    if (n1 <= n0) return;
    memset(dx + n0 * h * w, 0, (size_t)((n1 - n0) * h * w) * sizeof(float));
    for (long s = n0; s < n1; s++) {
        float *sample = dx + s * h * w;
        for (long oy = 0; oy < oh; oy++)
            for (long ox = 0; ox < ow; ox++) {
                const float *g = dy + ((s * oh + oy) * ow + ox) * o;
                for (long t = 0; t < taps; t++) {
                    float sum = 0.0f;
                    for (long oc = 0; oc < o; oc++) sum += g[oc] * weight[oc * taps + t];
                    sample[(oy + t / kw) * w + ox + t % kw] += sum;
                }
            }
    }
}
