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

// o == 32: four ymm accumulators per pixel, bias and ReLU applied before the single store.
__attribute__((target("avx2,fma")))
static void forward_avx2_o32(long n0, long n1, long h, long w, long kh, long kw, const float *x, const float *wt,
                             const float *bias, int relu, float *y) {
    const long oh = h - kh + 1, ow = w - kw + 1, taps = kh * kw;
    const __m256 zero = _mm256_setzero_ps();
    __m256 b[4];
    for (int v = 0; v < 4; v++) b[v] = bias != NULL ? _mm256_loadu_ps(bias + 8 * v) : zero;
    for (long s = n0; s < n1; s++) {
        const float *sample = x + s * h * w;
        for (long oy = 0; oy < oh; oy++) {
            for (long ox = 0; ox < ow; ox++) {
                __m256 acc0 = zero, acc1 = zero, acc2 = zero, acc3 = zero;
                for (long t = 0; t < taps; t++) {
                    const long ky = t / kw, kx = t - ky * kw;
                    const __m256 v = _mm256_broadcast_ss(sample + (oy + ky) * w + ox + kx);
                    const float *row = wt + t * 32;
                    acc0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(row), acc0);
                    acc1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(row + 8), acc1);
                    acc2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(row + 16), acc2);
                    acc3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(row + 24), acc3);
                }
                acc0 = _mm256_add_ps(acc0, b[0]);
                acc1 = _mm256_add_ps(acc1, b[1]);
                acc2 = _mm256_add_ps(acc2, b[2]);
                acc3 = _mm256_add_ps(acc3, b[3]);
                if (relu) {  // max(x, 0) gives +0 for NaN and ±0, like x > 0 ? x : 0.
                    acc0 = _mm256_max_ps(acc0, zero);
                    acc1 = _mm256_max_ps(acc1, zero);
                    acc2 = _mm256_max_ps(acc2, zero);
                    acc3 = _mm256_max_ps(acc3, zero);
                }
                float *out = y + ((s * oh + oy) * ow + ox) * 32;
                _mm256_storeu_ps(out, acc0);
                _mm256_storeu_ps(out + 8, acc1);
                _mm256_storeu_ps(out + 16, acc2);
                _mm256_storeu_ps(out + 24, acc3);
            }
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
