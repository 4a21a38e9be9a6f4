// Winograd convolutions for stride-1 3x3 NHWC convolutions, in two tile sizes:
//   F(2x2, 3x3): each 2x2 output tile from a 4x4 input tile, 16 multiplies per (input, output)
//     channel pair instead of 36 (2.25x fewer);
//   F(4x4, 3x3): each 4x4 output tile from a 6x6 input tile, 36 multiplies instead of 144 (4x
//     fewer, 1.78x fewer than F(2x2)), at the price of larger transforms and 2.25x the weights.
// Three passes per block of tiles: the input tiles transformed into a*a matrices [tiles][C]
// (V = Bt d B, a = tile + 2), a*a GEMMs against the transformed weights (U = G g Gt, packed once at
// plan time), and the a*a products folded back into the output tiles (Y = At M A) with the bias
// and clamp (in FINISH, the one place the epilogue is applied).
//   F(2x2): Bt = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//           At = [1 1 1 0; 0 1 -1 -1].
//   F(4x4) (points 0, 1, -1, 2, -2): Bt = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
//           0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1], G = [1/4 0 0; -1/6 -1/6 -1/6;
//           -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1], At = [1 1 1 1 1 0;
//           0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
// Every element's arithmetic depends only on its tile and channel, so any split of the tiles or
// of the output channels gives the same bits.
#include "modelkit_kernels.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum { CHUNK = 256 };  // Channels per pass over a tile: the zero row below covers padding taps.
static const float zero_row[CHUNK];

// 8 channels at a time through the same formulas as one (vector extensions: AVX registers in the
// avx2 functions, SSE pairs in the portable ones); unaligned loads and stores.
typedef float vec8 __attribute__((vector_size(32), aligned(4)));
#define LOAD_VEC(p) (*(const vec8 *)(p))
#define STORE_VEC(p, x) (*(vec8 *)(p) = (x))
#define LOAD_ONE(p) (*(p))
#define STORE_ONE(p, x) (*(p) = (x))
#define TYPE_VEC vec8
#define TYPE_ONE float

long mk_winograd_tiles(int tile, long oh, long ow) { return ((oh + tile - 1) / tile) * ((ow + tile - 1) / tile); }

// G g Gt of one 3x3 kernel into u[a * a] (row-major), a = tile + 2.
static void weight_tile(int tile, const float g[3][3], float *u) {
    if (tile == 2) {
        float rows[4][3];
        for (int x = 0; x < 3; x++) {
            rows[0][x] = g[0][x];
            rows[1][x] = 0.5f * (g[0][x] + g[1][x] + g[2][x]);
            rows[2][x] = 0.5f * (g[0][x] - g[1][x] + g[2][x]);
            rows[3][x] = g[2][x];
        }
        for (int r = 0; r < 4; r++) {
            u[r * 4 + 0] = rows[r][0];
            u[r * 4 + 1] = 0.5f * (rows[r][0] + rows[r][1] + rows[r][2]);
            u[r * 4 + 2] = 0.5f * (rows[r][0] - rows[r][1] + rows[r][2]);
            u[r * 4 + 3] = rows[r][2];
        }
        return;
    }
    // In double, then rounded once: the sixths and 24ths are not exact in float.
    static const double G[6][3] = {{0.25, 0, 0},
                                   {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                   {0, 0, 1}};
    double rows[6][3];
    for (int r = 0; r < 6; r++)
        for (int x = 0; x < 3; x++) rows[r][x] = G[r][0] * g[0][x] + G[r][1] * g[1][x] + G[r][2] * g[2][x];
    for (int r = 0; r < 6; r++)
        for (int s = 0; s < 6; s++)
            u[r * 6 + s] = (float)(rows[r][0] * G[s][0] + rows[r][1] * G[s][1] + rows[r][2] * G[s][2]);
}

void mk_winograd_weights(int tile, long o, long c, const float *weight, float *transformed) {
    const long plane = o * c, a = tile + 2;
    for (long oc = 0; oc < o; oc++) {
        for (long ic = 0; ic < c; ic++) {
            float g[3][3], u[36];
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++) g[y][x] = weight[((oc * 3 + y) * 3 + x) * c + ic];
            weight_tile(tile, g, u);
            for (long e = 0; e < a * a; e++) transformed[e * plane + oc * c + ic] = u[e];
        }
    }
}

// V[e][t][j] for one F(2x2) tile and channel j (8 from j for K = VEC): `src` holds the 16 tap
// rows of the tile (zero_row for padding), `v` points at V[0][t][0], the 16 matrices `stride` apart.
#define INPUT_F2(K, src, j, v, stride)                                                       \
    do {                                                                                     \
        TYPE_##K d_[4][4], t_[4][4];                                                         \
        for (int r_ = 0; r_ < 4; r_++)                                                       \
            for (int s_ = 0; s_ < 4; s_++) d_[r_][s_] = LOAD_##K((src)[r_ * 4 + s_] + (j));  \
        for (int s_ = 0; s_ < 4; s_++) {                                                     \
            t_[0][s_] = d_[0][s_] - d_[2][s_];                                               \
            t_[1][s_] = d_[1][s_] + d_[2][s_];                                               \
            t_[2][s_] = d_[2][s_] - d_[1][s_];                                               \
            t_[3][s_] = d_[1][s_] - d_[3][s_];                                               \
        }                                                                                    \
        for (int r_ = 0; r_ < 4; r_++) {                                                     \
            STORE_##K((v) + (r_ * 4 + 0) * (stride) + (j), t_[r_][0] - t_[r_][2]);           \
            STORE_##K((v) + (r_ * 4 + 1) * (stride) + (j), t_[r_][1] + t_[r_][2]);           \
            STORE_##K((v) + (r_ * 4 + 2) * (stride) + (j), t_[r_][2] - t_[r_][1]);           \
            STORE_##K((v) + (r_ * 4 + 3) * (stride) + (j), t_[r_][1] - t_[r_][3]);           \
        }                                                                                    \
    } while (0)

static inline __attribute__((always_inline)) void input_tile_f2(const float *const src[16], long n,
                                                                float *restrict v, long stride) {
    long j = 0;
    for (; j + 8 <= n; j += 8) INPUT_F2(VEC, src, j, v, stride);
    for (; j < n; j++) INPUT_F2(ONE, src, j, v, stride);
}

// Bt x for one 6-vector (F(4x4)).
#define BT6(x, y)                                                   \
    do {                                                            \
        y[0] = 4.0f * x[0] - 5.0f * x[2] + x[4];                    \
        y[1] = x[3] + x[4] - 4.0f * (x[1] + x[2]);                  \
        y[2] = x[4] - x[3] + 4.0f * (x[1] - x[2]);                  \
        y[3] = x[4] - x[2] + 2.0f * (x[3] - x[1]);                  \
        y[4] = x[4] - x[2] - 2.0f * (x[3] - x[1]);                  \
        y[5] = 4.0f * x[1] - 5.0f * x[3] + x[5];                    \
    } while (0)

// The same for one F(4x4) tile: 36 tap rows, 36 matrices.
#define INPUT_F4(K, src, j, v, stride)                                                              \
    do {                                                                                            \
        TYPE_##K t_[6][6];                                                                          \
        for (int s_ = 0; s_ < 6; s_++) {                                                            \
            TYPE_##K x_[6], y_[6];                                                                  \
            for (int r_ = 0; r_ < 6; r_++) x_[r_] = LOAD_##K((src)[r_ * 6 + s_] + (j));             \
            BT6(x_, y_);                                                                            \
            for (int r_ = 0; r_ < 6; r_++) t_[r_][s_] = y_[r_];                                     \
        }                                                                                           \
        for (int r_ = 0; r_ < 6; r_++) {                                                            \
            TYPE_##K y_[6];                                                                         \
            BT6(t_[r_], y_);                                                                        \
            for (int s_ = 0; s_ < 6; s_++) STORE_##K((v) + (r_ * 6 + s_) * (stride) + (j), y_[s_]); \
        }                                                                                           \
    } while (0)

static inline __attribute__((always_inline)) void input_tile_f4(const float *const src[36], long n,
                                                                float *restrict v, long stride) {
    long j = 0;
    for (; j + 8 <= n; j += 8) INPUT_F4(VEC, src, j, v, stride);
    for (; j < n; j++) INPUT_F4(ONE, src, j, v, stride);
}

static inline __attribute__((always_inline)) void input_body(int tile, const mk_conv_geometry *g, const float *image,
                                                             long t0, long t1, float *v, long stride) {
    const long c = g->c, tw = (g->ow + tile - 1) / tile, a = tile + 2;
    for (long t = t0; t < t1; t++) {
        const long top = (t / tw) * tile - g->pad_top, left = (t % tw) * tile - g->pad_left;
        for (long j0 = 0; j0 < c; j0 += CHUNK) {
            const long n = c - j0 < CHUNK ? c - j0 : CHUNK;
            const float *src[36];
            for (long r = 0; r < a; r++)
                for (long s = 0; s < a; s++) {
                    const long y = top + r, x = left + s;
                    src[r * a + s] = y >= 0 && y < g->h && x >= 0 && x < g->w ? image + (y * g->w + x) * c + j0 : zero_row;
                }
            if (tile == 2) input_tile_f2(src, n, v + (t - t0) * c + j0, stride);
            else input_tile_f4(src, n, v + (t - t0) * c + j0, stride);
        }
    }
}

__attribute__((target("avx2,fma")))
static void input_avx2(int tile, const mk_conv_geometry *g, const float *image, long t0, long t1, float *v,
                       long stride) {
    input_body(tile, g, image, t0, t1, v, stride);
}

static void input_portable(int tile, const mk_conv_geometry *g, const float *image, long t0, long t1, float *v,
                           long stride) {
    input_body(tile, g, image, t0, t1, v, stride);
}

void mk_winograd_input(int path, int tile, const mk_conv_geometry *g, const float *image, long t0, long t1, float *v,
                       long stride) {
    if (mk_kernels_clamp(path) >= MK_KERNELS_AVX2) input_avx2(tile, g, image, t0, t1, v, stride);
    else input_portable(tile, g, image, t0, t1, v, stride);
}

// The epilogue of every output value, the one place the bias and clamp are applied: `y` (one
// channel or 8) plus the bias, then the clamp as mk_sgemm_packed_clamp applies it (`v > lo ? v :
// lo`, then `v < hi ? v : hi`) when `clamp` is set.
typedef int mask8 __attribute__((vector_size(32), aligned(4)));
#define SPLAT_ONE(x) (x)
#define SPLAT_VEC(x) ((vec8){0} + (x))
#define SELECT_ONE(keep, a, b) ((keep) ? (a) : (b))
#define SELECT_VEC(keep, a, b) ((vec8)(((mask8)(a) & (keep)) | ((mask8)(b) & ~(keep))))
#define FINISH(K, y, b, clamp, lo, hi)                                        \
    do {                                                                      \
        y += (b);                                                             \
        if (clamp) {                                                          \
            y = SELECT_##K(y > SPLAT_##K(lo), y, SPLAT_##K(lo));              \
            y = SELECT_##K(y < SPLAT_##K(hi), y, SPLAT_##K(hi));              \
        }                                                                     \
    } while (0)

// Y for one F(2x2) tile and channel j (8 from j for K = VEC) from M[e][t][j]: `m` points at
// M[0][t][0], the 16 matrices `stride` apart; `b` is the bias; writes the outputs `keep` marks
// (bit 2i+k: row i, column k) at out + i * row_stride + k * ld.
#define OUTPUT_F2(K, m, stride, j, b, out, ld, row_stride, keep)                                \
    do {                                                                                        \
        TYPE_##K q_[2][4];                                                                      \
        for (int s_ = 0; s_ < 4; s_++) {                                                        \
            const TYPE_##K m0_ = LOAD_##K((m) + (0 * 4 + s_) * (stride) + (j));                 \
            const TYPE_##K m1_ = LOAD_##K((m) + (1 * 4 + s_) * (stride) + (j));                 \
            const TYPE_##K m2_ = LOAD_##K((m) + (2 * 4 + s_) * (stride) + (j));                 \
            const TYPE_##K m3_ = LOAD_##K((m) + (3 * 4 + s_) * (stride) + (j));                 \
            q_[0][s_] = m0_ + m1_ + m2_;                                                        \
            q_[1][s_] = m1_ - m2_ - m3_;                                                        \
        }                                                                                       \
        for (int i_ = 0; i_ < 2; i_++) {                                                        \
            TYPE_##K y_[2] = {q_[i_][0] + q_[i_][1] + q_[i_][2], q_[i_][1] - q_[i_][2] - q_[i_][3]}; \
            for (int k_ = 0; k_ < 2; k_++)                                                      \
                if ((keep) & (1 << (2 * i_ + k_))) {                                            \
                    FINISH(K, y_[k_], b, clamp, lo, hi);                                        \
                    STORE_##K((out) + i_ * (row_stride) + k_ * (ld) + (j), y_[k_]);             \
                }                                                                               \
        }                                                                                       \
    } while (0)

// At x for one 6-vector (F(4x4)).
#define AT6(x, y)                                                   \
    do {                                                            \
        y[0] = x[0] + (x[1] + x[2]) + (x[3] + x[4]);                \
        y[1] = (x[1] - x[2]) + 2.0f * (x[3] - x[4]);                \
        y[2] = (x[1] + x[2]) + 4.0f * (x[3] + x[4]);                \
        y[3] = (x[1] - x[2]) + 8.0f * (x[3] - x[4]) + x[5];         \
    } while (0)

// The same for one F(4x4) tile (36 matrices; `keep` bit 4i+k: row i, column k).
#define OUTPUT_F4(K, m, stride, j, b, out, ld, row_stride, keep)                                      \
    do {                                                                                              \
        TYPE_##K q_[4][6];                                                                            \
        for (int s_ = 0; s_ < 6; s_++) {                                                              \
            TYPE_##K x_[6], y_[4];                                                                    \
            for (int r_ = 0; r_ < 6; r_++) x_[r_] = LOAD_##K((m) + (r_ * 6 + s_) * (stride) + (j));   \
            AT6(x_, y_);                                                                              \
            for (int i_ = 0; i_ < 4; i_++) q_[i_][s_] = y_[i_];                                       \
        }                                                                                             \
        for (int i_ = 0; i_ < 4; i_++) {                                                              \
            TYPE_##K y_[4];                                                                           \
            AT6(q_[i_], y_);                                                                          \
            for (int k_ = 0; k_ < 4; k_++)                                                            \
                if ((keep) & (1 << (4 * i_ + k_))) {                                                  \
                    FINISH(K, y_[k_], b, clamp, lo, hi);                                              \
                    STORE_##K((out) + i_ * (row_stride) + k_ * (ld) + (j), y_[k_]);                   \
                }                                                                                     \
        }                                                                                             \
    } while (0)

// One output tile's `n` channels (see OUTPUT_F2 / OUTPUT_F4), 8 at a time, then one at a time.
static inline __attribute__((always_inline)) void output_tile(int tile, const float *restrict m, long stride, long n,
                                                              long ld, const float *bias, int clamp, float lo,
                                                              float hi, float *restrict out, long row_stride,
                                                              int keep) {
    long j = 0;
    for (; j + 8 <= n; j += 8) {
        const vec8 b = bias != NULL ? LOAD_VEC(bias + j) : (vec8){0};
        if (tile == 2) OUTPUT_F2(VEC, m, stride, j, b, out, ld, row_stride, keep);
        else OUTPUT_F4(VEC, m, stride, j, b, out, ld, row_stride, keep);
    }
    for (; j < n; j++) {
        const float b = bias != NULL ? bias[j] : 0.0f;
        if (tile == 2) OUTPUT_F2(ONE, m, stride, j, b, out, ld, row_stride, keep);
        else OUTPUT_F4(ONE, m, stride, j, b, out, ld, row_stride, keep);
    }
}

static inline __attribute__((always_inline)) void output_body(int tile, const mk_conv_geometry *g, long n, long ld,
                                                              const float *m, long stride, long t0, long t1, long p0,
                                                              long p1, const float *bias, int clamp, float lo, float hi,
                                                              float *out) {
    const long tw = (g->ow + tile - 1) / tile;
    for (long t = t0; t < t1; t++) {
        const long y = (t / tw) * tile, x = (t % tw) * tile;
        int keep = 0;
        for (int i = 0; i < tile; i++)
            for (int k = 0; k < tile; k++) {
                const long p = (y + i) * g->ow + x + k;
                if (y + i < g->oh && x + k < g->ow && p >= p0 && p < p1) keep |= 1 << (tile * i + k);
            }
        if (keep == 0) continue;
        const float *tile_m = m + (t - t0) * ld;
        float *tile_out = out + (y * g->ow + x) * ld;
        output_tile(tile, tile_m, stride, n, ld, bias, clamp, lo, hi, tile_out, g->ow * ld, keep);
    }
}

__attribute__((target("avx2,fma")))
static void output_avx2(int tile, const mk_conv_geometry *g, long n, long ld, const float *m, long stride, long t0,
                        long t1, long p0, long p1, const float *bias, int clamp, float lo, float hi, float *out) {
    output_body(tile, g, n, ld, m, stride, t0, t1, p0, p1, bias, clamp, lo, hi, out);
}

static void output_portable(int tile, const mk_conv_geometry *g, long n, long ld, const float *m, long stride, long t0,
                            long t1, long p0, long p1, const float *bias, int clamp, float lo, float hi, float *out) {
    output_body(tile, g, n, ld, m, stride, t0, t1, p0, p1, bias, clamp, lo, hi, out);
}

void mk_winograd_output(int path, int tile, const mk_conv_geometry *g, long n, long ld, const float *m, long stride,
                        long t0, long t1, long p0, long p1, const float *bias, int clamp, float lo, float hi,
                        float *out) {
    if (mk_kernels_clamp(path) >= MK_KERNELS_AVX2)
        output_avx2(tile, g, n, ld, m, stride, t0, t1, p0, p1, bias, clamp, lo, hi, out);
    else output_portable(tile, g, n, ld, m, stride, t0, t1, p0, p1, bias, clamp, lo, hi, out);
}

int mk_winograd_enabled(void) {
    const char *setting = getenv("MODELKIT_WINOGRAD");
    return setting == NULL || strcmp(setting, "0") != 0;
}

int mk_winograd_forced_tile(void) {
    const char *setting = getenv("MODELKIT_WINOGRAD");
    if (setting == NULL) return 0;
    if (strcmp(setting, "2") == 0) return 2;
    if (strcmp(setting, "4") == 0) return 4;
    return 0;
}
