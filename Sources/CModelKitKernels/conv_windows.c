// Convolutions with a shallow window (depth kh*kw*c up to one K block: ResNet-50's 7x7 stem over
// 3 channels, MobileNetV2's first 3x3) as a GEMM that reads each output pixel's window in place
// from a zero-padded band of input rows: no im2col matrix is written and read back (for the stem,
// 147 floats per pixel against 64 outputs, that copy was about a sixth of the layer).
#include "modelkit_kernels.h"

#include <string.h>

enum { WINDOW_TILE_ROWS = 6, WINDOW_PANEL = 16, WINDOW_MAX_DEPTH = 320, WINDOW_MAX_SEGMENTS = 64 };

// Columns of the padded band: every window of an output row lies inside it.
static long band_width(const mk_conv_geometry *g) { return (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1; }

static long band_height(const mk_conv_geometry *g, long output_rows) {
    return (output_rows - 1) * g->sh + (g->kh - 1) * g->dh + 1;
}

// Runs of the window that are contiguous in the band: one per kernel row without dilation along
// the width, else one per tap.
static long segment_count(const mk_conv_geometry *g) { return g->dw == 1 ? g->kh : g->kh * g->kw; }

int mk_conv_windows_supported(const mk_conv_geometry *g) {
    return g->kh * g->kw * g->c <= WINDOW_MAX_DEPTH && segment_count(g) <= WINDOW_MAX_SEGMENTS && g->oh > 0 &&
           g->ow > 0;
}

long mk_conv_windows_scratch_count(const mk_conv_geometry *g, long pixels) {
    // A run of `pixels` pixels starting mid-row touches at most pixels / ow + 2 output rows.
    long rows = (pixels + g->ow - 1) / g->ow + 1;
    if (rows > g->oh) rows = g->oh;
    return band_height(g, rows) * band_width(g) * g->c;
}

// Input rows [top, top + rows) with the columns from -pad_left on, zeros outside the image.
static void fill_band(const mk_conv_geometry *g, const float *image, long top, long rows, float *band) {
    const long width = band_width(g), c = g->c;
    long first = g->pad_left < width ? g->pad_left : width;  // First band column inside the image.
    long last = g->pad_left + g->w < width ? g->pad_left + g->w : width;
    if (last < first) last = first;
    for (long r = 0; r < rows; r++) {
        float *line = band + r * width * c;
        const long iy = top + r;
        if (iy < 0 || iy >= g->h) {
            memset(line, 0, (size_t)(width * c) * sizeof(float));
            continue;
        }
        memset(line, 0, (size_t)(first * c) * sizeof(float));
        if (last > first)
            memcpy(line + first * c, image + (iy * g->w + first - g->pad_left) * c, (size_t)((last - first) * c) * sizeof(float));
        memset(line + last * c, 0, (size_t)((width - last) * c) * sizeof(float));
    }
}

void mk_conv_windows_f32(int path, const mk_conv_geometry *g, const float *image, long p0, long p1, long n,
                         const float *packed, const float *bias, int clamp, float lo, float hi, float *band,
                         float *out) {
    if (p1 <= p0 || n <= 0) return;
    const long c = g->c, depth = g->kh * g->kw * c, width = band_width(g);
    const long oy0 = p0 / g->ow, oy1 = (p1 - 1) / g->ow;
    fill_band(g, image, oy0 * g->sh - g->pad_top, band_height(g, oy1 - oy0 + 1), band);
    long segments[WINDOW_MAX_SEGMENTS];
    const long count = segment_count(g), length = depth / count;
    for (long ky = 0; ky < g->kh; ky++) {
        if (g->dw == 1) {
            segments[ky] = ky * g->dh * width * c;
        } else {
            for (long kx = 0; kx < g->kw; kx++) segments[ky * g->kw + kx] = (ky * g->dh * width + kx * g->dw) * c;
        }
    }
    // Per output row and weight panel, the row's tiles: the panel stays in L1 across them, and a
    // tile's pixels are a constant stride apart (they never wrap to the next row).
    for (long oy = oy0; oy <= oy1; oy++) {
        const long x0 = oy == oy0 ? p0 - oy * g->ow : 0, x1 = oy == oy1 ? p1 - oy * g->ow : g->ow;
        const float *line = band + (oy - oy0) * g->sh * width * c;
        float *row = out + (oy * g->ow + x0 - p0) * n;
        for (long j0 = 0; j0 < n; j0 += WINDOW_PANEL) {
            const long cols = n - j0 < WINDOW_PANEL ? n - j0 : WINDOW_PANEL;
            for (long x = x0; x < x1; x += WINDOW_TILE_ROWS) {
                const long rows = x1 - x < WINDOW_TILE_ROWS ? x1 - x : WINDOW_TILE_ROWS;
                mk_sgemm_window_tile(path, rows, line + x * g->sw * c, g->sw * c, segments, count, length,
                                     packed + j0 * depth, cols, row + (x - x0) * n + j0, n,
                                     bias == NULL ? NULL : bias + j0, clamp, lo, hi);
            }
        }
    }
}
