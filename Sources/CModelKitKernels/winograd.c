// Winograd F(2x2, 3x3) for stride-1 3x3 NHWC convolutions: each 2x2 output tile comes from a 4x4
// input tile with 16 multiplies per (input, output) channel pair instead of 36, so the GEMM work
// drops 2.25x. Three passes per image: the input tiles transformed into 16 matrices [tiles][C]
// (V = Bt d B), 16 GEMMs against the transformed weights (U = G g Gt, packed once at plan time),
// and the 16 products folded back into 2x2 outputs (Y = At M A) with the bias and clamp.
//   Bt = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//   At = [1 1 1 0; 0 1 -1 -1].
// Every element's arithmetic depends only on its tile, so any split of the tiles gives the same bits.
#include "modelkit_kernels.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum { CHUNK = 256 };  // Channels per pass over a tile: the zero row below covers padding taps.
static const float zero_row[CHUNK];

long mk_winograd_f23_tiles(long oh, long ow) { return ((oh + 1) / 2) * ((ow + 1) / 2); }

void mk_winograd_f23_weights(long o, long c, const float *weight, float *transformed) {
    const long plane = o * c;
    for (long oc = 0; oc < o; oc++) {
        for (long ic = 0; ic < c; ic++) {
            float g[3][3], rows[4][3];
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++) g[y][x] = weight[((oc * 3 + y) * 3 + x) * c + ic];
            for (int x = 0; x < 3; x++) {
                rows[0][x] = g[0][x];
                rows[1][x] = 0.5f * (g[0][x] + g[1][x] + g[2][x]);
                rows[2][x] = 0.5f * (g[0][x] - g[1][x] + g[2][x]);
                rows[3][x] = g[2][x];
            }
            for (int r = 0; r < 4; r++) {
                float *u = transformed + (r * 4) * plane + oc * c + ic;
                u[0 * plane] = rows[r][0];
                u[1 * plane] = 0.5f * (rows[r][0] + rows[r][1] + rows[r][2]);
                u[2 * plane] = 0.5f * (rows[r][0] - rows[r][1] + rows[r][2]);
                u[3 * plane] = rows[r][2];
            }
        }
    }
}

// V[e][t][j] for one tile and channels [j0, j0 + n): `src` holds the 16 tap rows of the tile
// (zero_row for padding), `v` points at V[0][t][j0], the 16 matrices `stride` apart.
static inline __attribute__((always_inline)) void input_tile(const float *const src[16], long n,
                                                             float *restrict v, long stride) {
    for (long j = 0; j < n; j++) {
        float d[4][4], t[4][4];
        for (int r = 0; r < 4; r++)
            for (int s = 0; s < 4; s++) d[r][s] = src[r * 4 + s][j];
        for (int s = 0; s < 4; s++) {
            t[0][s] = d[0][s] - d[2][s];
            t[1][s] = d[1][s] + d[2][s];
            t[2][s] = d[2][s] - d[1][s];
            t[3][s] = d[1][s] - d[3][s];
        }
        for (int r = 0; r < 4; r++) {
            v[(r * 4 + 0) * stride + j] = t[r][0] - t[r][2];
            v[(r * 4 + 1) * stride + j] = t[r][1] + t[r][2];
            v[(r * 4 + 2) * stride + j] = t[r][2] - t[r][1];
            v[(r * 4 + 3) * stride + j] = t[r][1] - t[r][3];
        }
    }
}

static inline __attribute__((always_inline)) void input_body(const mk_conv_geometry *g, const float *image, long t0,
                                                             long t1, float *v) {
    const long c = g->c, tw = (g->ow + 1) / 2, stride = (t1 - t0) * c;
    for (long t = t0; t < t1; t++) {
        const long top = (t / tw) * 2 - g->pad_top, left = (t % tw) * 2 - g->pad_left;
        for (long j0 = 0; j0 < c; j0 += CHUNK) {
            const long n = c - j0 < CHUNK ? c - j0 : CHUNK;
            const float *src[16];
            for (int r = 0; r < 4; r++)
                for (int s = 0; s < 4; s++) {
                    const long y = top + r, x = left + s;
                    src[r * 4 + s] = y >= 0 && y < g->h && x >= 0 && x < g->w ? image + (y * g->w + x) * c + j0 : zero_row;
                }
            input_tile(src, n, v + (t - t0) * c + j0, stride);
        }
    }
}

__attribute__((target("avx2,fma")))
static void input_avx2(const mk_conv_geometry *g, const float *image, long t0, long t1, float *v) {
    input_body(g, image, t0, t1, v);
}

static void input_portable(const mk_conv_geometry *g, const float *image, long t0, long t1, float *v) {
    input_body(g, image, t0, t1, v);
}

void mk_winograd_f23_input(int path, const mk_conv_geometry *g, const float *image, long t0, long t1, float *v) {
    if (mk_kernels_clamp(path) >= MK_KERNELS_AVX2) input_avx2(g, image, t0, t1, v);
    else input_portable(g, image, t0, t1, v);
}

// Y for one tile from M[e][t][0..o): `m` points at M[0][t][0], the 16 matrices `stride` apart;
// writes the outputs `keep` marks (bit 2i+k: row i, column k) at out, out + o (right), out +
// row_stride (below).
static inline __attribute__((always_inline)) void output_tile(const float *restrict m, long stride, long o,
                                                              const float *bias, int clamp, float lo, float hi,
                                                              float *restrict out, long row_stride, int keep) {
    for (long j = 0; j < o; j++) {
        float q[2][4], y[2][2];
        for (int s = 0; s < 4; s++) {
            const float m0 = m[(0 * 4 + s) * stride + j], m1 = m[(1 * 4 + s) * stride + j];
            const float m2 = m[(2 * 4 + s) * stride + j], m3 = m[(3 * 4 + s) * stride + j];
            q[0][s] = m0 + m1 + m2;
            q[1][s] = m1 - m2 - m3;
        }
        const float b = bias != NULL ? bias[j] : 0.0f;
        for (int i = 0; i < 2; i++) {
            y[i][0] = q[i][0] + q[i][1] + q[i][2] + b;
            y[i][1] = q[i][1] - q[i][2] - q[i][3] + b;
            if (clamp)
                for (int k = 0; k < 2; k++) {
                    const float v = y[i][k] > lo ? y[i][k] : lo;
                    y[i][k] = v < hi ? v : hi;
                }
        }
        if (keep & 1) out[j] = y[0][0];
        if (keep & 2) out[o + j] = y[0][1];
        if (keep & 4) out[row_stride + j] = y[1][0];
        if (keep & 8) out[row_stride + o + j] = y[1][1];
    }
}

static inline __attribute__((always_inline)) void output_body(const mk_conv_geometry *g, long o, const float *m, long t0,
                                                              long t1, long p0, long p1, const float *bias, int clamp,
                                                              float lo, float hi, float *out) {
    const long tw = (g->ow + 1) / 2, stride = (t1 - t0) * o;
    for (long t = t0; t < t1; t++) {
        const long y = (t / tw) * 2, x = (t % tw) * 2;
        int keep = 0;
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 2; k++) {
                const long p = (y + i) * g->ow + x + k;
                if (y + i < g->oh && x + k < g->ow && p >= p0 && p < p1) keep |= 1 << (2 * i + k);
            }
        if (keep != 0)
            output_tile(m + (t - t0) * o, stride, o, bias, clamp, lo, hi, out + (y * g->ow + x) * o, g->ow * o, keep);
    }
}

__attribute__((target("avx2,fma")))
static void output_avx2(const mk_conv_geometry *g, long o, const float *m, long t0, long t1, long p0, long p1,
                        const float *bias, int clamp, float lo, float hi, float *out) {
    output_body(g, o, m, t0, t1, p0, p1, bias, clamp, lo, hi, out);
}

static void output_portable(const mk_conv_geometry *g, long o, const float *m, long t0, long t1, long p0, long p1,
                            const float *bias, int clamp, float lo, float hi, float *out) {
    output_body(g, o, m, t0, t1, p0, p1, bias, clamp, lo, hi, out);
}

void mk_winograd_f23_output(int path, const mk_conv_geometry *g, long o, const float *m, long t0, long t1, long p0,
                            long p1, const float *bias, int clamp, float lo, float hi, float *out) {
    if (mk_kernels_clamp(path) >= MK_KERNELS_AVX2) output_avx2(g, o, m, t0, t1, p0, p1, bias, clamp, lo, hi, out);
    else output_portable(g, o, m, t0, t1, p0, p1, bias, clamp, lo, hi, out);
}

int mk_winograd_enabled(void) {
    const char *setting = getenv("MODELKIT_WINOGRAD");
    return setting == NULL || strcmp(setting, "0") != 0;
}
