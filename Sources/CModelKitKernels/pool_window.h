// Private to the pooling kernels (pool_nhwc.c, avgpool_s8.c): one definition of a window's real cells.
#ifndef MODELKIT_POOL_WINDOW_H
#define MODELKIT_POOL_WINDOW_H

#include "modelkit_kernels.h"

// The window of output (oy, ox) clipped to the input: rows [*y0, *y1), columns [*x0, *x1).
static inline void clip_window(const mk_pool_geometry *g, long oy, long ox, long *y0, long *y1, long *x0, long *x1) {
    const long top = oy * g->sh - g->pad_top, left = ox * g->sw - g->pad_left;
    *y0 = top < 0 ? 0 : top;
    *y1 = top + g->kh > g->h ? g->h : top + g->kh;
    *x0 = left < 0 ? 0 : left;
    *x1 = left + g->kw > g->w ? g->w : left + g->kw;
}

#endif
