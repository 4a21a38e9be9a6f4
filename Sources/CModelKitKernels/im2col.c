// im2col for NHWC convolutions: row p of the column matrix holds, for output pixel p of one
// image, the kh x kw x c input values its kernel covers (ky, kx, channel order: the weight's
// [O, kH, kW, C] layout), with `pad` for cells outside the input. Without dilation the kw
// cells of one kernel row are adjacent in NHWC, so an in-bounds row segment is one copy.
#include "modelkit_kernels.h"

#include <string.h>

#define DEFINE_IM2COL(NAME, T)                                                                        \
    void NAME(const mk_conv_geometry *g, const T *image, long p0, long p1, T pad, T *columns) {       \
        const long c = g->c, segment = g->kw * c;                                                     \
        for (long p = p0; p < p1; p++) {                                                              \
            const long oy = p / g->ow, ox = p - oy * g->ow;                                           \
            const long top = oy * g->sh - g->pad_top, left = ox * g->sw - g->pad_left;                \
            for (long ky = 0; ky < g->kh; ky++) {                                                     \
                const long iy = top + ky * g->dh;                                                     \
                T *row = columns + (p - p0) * g->kh * segment + ky * segment;                         \
                if (iy < 0 || iy >= g->h) {                                                           \
                    for (long i = 0; i < segment; i++) row[i] = pad;                                  \
                    continue;                                                                         \
                }                                                                                     \
                const T *line = image + iy * g->w * c;                                                \
                if (g->dw == 1 && left >= 0 && left + g->kw <= g->w) {                                \
                    memcpy(row, line + left * c, (size_t)segment * sizeof(T));                        \
                    continue;                                                                         \
                }                                                                                     \
                for (long kx = 0; kx < g->kw; kx++) {                                                 \
                    const long ix = left + kx * g->dw;                                                \
                    if (ix < 0 || ix >= g->w) {                                                       \
                        for (long i = 0; i < c; i++) row[kx * c + i] = pad;                           \
                    } else {                                                                          \
                        memcpy(row + kx * c, line + ix * c, (size_t)c * sizeof(T));                   \
                    }                                                                                 \
                }                                                                                     \
            }                                                                                         \
        }                                                                                             \
    }

DEFINE_IM2COL(mk_im2col_f32, float)
DEFINE_IM2COL(mk_im2col_i8, int8_t)
