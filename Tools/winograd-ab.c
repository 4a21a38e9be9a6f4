// ResNet-50's Winograd 3x3 layers on 2 threads, two drivers in one process, calls alternating
// (A B, then B A) so a shared, noisy machine slows both alike. A is main's F(2x2) driver (the
// winograd.c of a revision, its entry points renamed old_*, split by tiles as FloatConv2DStep did);
// B the worktree's (FloatConv2DStep's choice of tile size and of tile or output-column split).
// Both use the worktree's GEMM. Built and run by Tools/winograd-ab.
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-clock.h"

#include "modelkit_kernels.h"

long old_mk_winograd_f23_tiles(long oh, long ow);
void old_mk_winograd_f23_weights(long o, long c, const float *weight, float *transformed);
void old_mk_winograd_f23_input(int path, const mk_conv_geometry *g, const float *image, long t0, long t1, float *v);
void old_mk_winograd_f23_output(int path, const mk_conv_geometry *g, long o, const float *m, long t0, long t1, long p0,
                                long p1, const float *bias, int clamp, float lo, float hi, float *out);

// A two-thread pool: tasks claimed dynamically by the caller and one spinning worker.
typedef void (*task_function)(void *context, long task, int thread);
static struct {
    _Atomic long generation, next, done;
    long tasks;
    task_function body;
    void *context;
} pool;

static void claim(int thread) {
    for (;;) {
        const long task = atomic_fetch_add(&pool.next, 1);
        if (task >= pool.tasks) return;
        pool.body(pool.context, task, thread);
        atomic_fetch_add(&pool.done, 1);
    }
}

static void *worker(void *unused) {
    (void)unused;
    long seen = 0;
    for (;;) {
        while (atomic_load(&pool.generation) == seen) __builtin_ia32_pause();
        seen = atomic_load(&pool.generation);
        claim(1);
    }
    return NULL;
}

static void run_tasks(long tasks, task_function body, void *context) {
    pool.tasks = tasks, pool.body = body, pool.context = context;
    atomic_store(&pool.done, 0);
    atomic_store(&pool.next, 0);
    atomic_fetch_add(&pool.generation, 1);
    claim(0);
    while (atomic_load(&pool.done) < tasks) __builtin_ia32_pause();
}

static long chunk_lo(long task, long parts, long count, long granule) {
    const long units = (count + granule - 1) / granule, lo = units * task / parts * granule;
    return lo < count ? lo : count;
}

typedef struct {
    int path, tile, matrices;
    long c, o, pixels, tiles, block, panel, panel_count, tasks, input_tasks, column_split;
    mk_conv_geometry g;
    const float *x, *bias, *packed;
    float *copies;  // `copy_count` copies of the packed weights, cycled through in cold mode
    long copy_count, copy;
    int unequal_blocks;  // blocks of `block` tiles and the rest (main's driver), not equal ones
    float *y, *scratch;  // scratch: per thread `scratch_count` floats
    long scratch_count;
} layer;

// As FloatConv2DStep.winogradBlockTiles with a target of `kb` KB and at least `floor` tiles.
static long block_tiles_of(long tiles, long channels, long matrices, long kb, long floor) {
    long target = (kb * 1024 / 4) / (matrices * channels);
    if (target < floor) target = floor;
    if (tiles <= target + target / 2) return tiles;
    const long blocks = (tiles + target - 1) / target;
    return (tiles + blocks - 1) / blocks;
}

static long block_tiles(long tiles, long channels, long matrices) {
    return block_tiles_of(tiles, channels, matrices, 1024, 48);
}

// One thread's tiles [t0, t1) in blocks, as runWinograd.
static void tiles_task(const layer *l, long t0, long t1, float *scratch) {
    const long blocks = (t1 - t0 + l->block - 1) / l->block;
    const long size = l->unequal_blocks || blocks == 0 ? l->block : (t1 - t0 + blocks - 1) / blocks;
    for (long first = t0; first < t1;) {
        const long last = first + size < t1 ? first + size : t1, count = last - first;
        float *products = scratch + l->matrices * count * l->c;
        if (l->tile == 0) old_mk_winograd_f23_input(l->path, &l->g, l->x, first, last, scratch);
        else mk_winograd_input(l->path, l->tile, &l->g, l->x, first, last, scratch, count * l->c);
        for (long e = 0; e < l->matrices; e++)
            mk_sgemm_packed_clamp(l->path, count, l->o, l->c, scratch + e * count * l->c, l->c,
                                  l->packed + e * l->panel_count, products + e * count * l->o, l->o, NULL, 0, 0, 0);
        if (l->tile == 0)
            old_mk_winograd_f23_output(l->path, &l->g, l->o, products, first, last, 0, l->pixels, l->bias, 1, 0.0f,
                                       INFINITY, l->y);
        else
            mk_winograd_output(l->path, l->tile, &l->g, l->o, l->o, products, count * l->o, first, last, 0, l->pixels,
                               l->bias, 1, 0.0f, INFINITY, l->y);
        first = last;
    }
}

static void split_tiles(void *context, long task, int thread) {
    const layer *l = context;
    tiles_task(l, chunk_lo(task, l->tasks, l->tiles, 6), chunk_lo(task + 1, l->tasks, l->tiles, 6),
               l->scratch + thread * l->scratch_count);
}

static void input_part(void *context, long task, int thread) {
    (void)thread;
    const layer *l = context;
    const long t0 = chunk_lo(task, l->input_tasks, l->tiles, 1), t1 = chunk_lo(task + 1, l->input_tasks, l->tiles, 1);
    if (t1 > t0) mk_winograd_input(l->path, l->tile, &l->g, l->x, t0, t1, l->scratch + t0 * l->c, l->tiles * l->c);
}

static void column_part(void *context, long task, int thread) {
    (void)thread;
    const layer *l = context;
    const long j0 = chunk_lo(task, l->tasks, l->o, l->panel), j1 = chunk_lo(task + 1, l->tasks, l->o, l->panel);
    if (j1 <= j0) return;
    float *products = l->scratch + l->matrices * l->tiles * l->c + j0;
    for (long e = 0; e < l->matrices; e++)
        mk_sgemm_packed_clamp(l->path, l->tiles, j1 - j0, l->c, l->scratch + e * l->tiles * l->c, l->c,
                              l->packed + e * l->panel_count + j0 * l->c, products + e * l->tiles * l->o, l->o, NULL,
                              0, 0, 0);
    mk_winograd_output(l->path, l->tile, &l->g, j1 - j0, l->o, products, l->tiles * l->o, 0, l->tiles, 0, l->pixels,
                       l->bias + j0, 1, 0.0f, INFINITY, l->y + j0);
}

// im2col rows of the whole image split by rows, then the GEMM by output columns (8 tasks), as
// FloatConv2DStep's column split does.
static void im2col_part(void *context, long task, int thread) {
    (void)thread;
    const layer *l = context;
    const long p0 = chunk_lo(task, 8, l->pixels, 1), p1 = chunk_lo(task + 1, 8, l->pixels, 1);
    if (p1 > p0) mk_im2col_f32(&l->g, l->x, p0, p1, 0.0f, l->scratch + p0 * 9 * l->c);
}

static void im2col_columns(void *context, long task, int thread) {
    (void)thread;
    const layer *l = context;
    const long j0 = chunk_lo(task, l->tasks, l->o, l->panel), j1 = chunk_lo(task + 1, l->tasks, l->o, l->panel);
    if (j1 > j0)
        mk_sgemm_packed_clamp(l->path, l->pixels, j1 - j0, 9 * l->c, l->scratch, 9 * l->c, l->packed + j0 * 9 * l->c,
                              l->y + j0, l->o, l->bias + j0, 1, 0.0f, INFINITY);
}

static void run_layer(layer *l) {
    l->packed = l->copies + l->copy * l->matrices * l->panel_count;
    l->copy = (l->copy + 1) % l->copy_count;
    if (l->tile < 0) {
        run_tasks(8, im2col_part, l);
        run_tasks(l->tasks, im2col_columns, l);
    } else if (l->column_split) {
        run_tasks(l->input_tasks, input_part, l);
        run_tasks(l->tasks, column_part, l);
    } else {
        run_tasks(l->tasks, split_tiles, l);
    }
}

// tile 0: main's F(2x2) driver; 2 or 4: the worktree's with that tile size; split: -1 as the
// worktree's plan decides, 0 tiles, 1 output columns.
static layer make_layer(int path, long size, long c, int tile, int split, long column_tasks, int cold,
                        const float *x, const float *w, const float *bias, float *y) {
    layer l = {0};
    l.path = path, l.tile = tile, l.c = c, l.o = c, l.pixels = size * size, l.x = x, l.bias = bias, l.y = y;
    l.g = (mk_conv_geometry){size, size, c, 3, 3, 1, 1, 1, 1, 1, 1, size, size};
    if (tile < 0) {  // im2col
        l.matrices = 1, l.tiles = 0, l.block = 0;
        l.panel = mk_sgemm_packed_b_count(path, 1, 1);
        l.panel_count = mk_sgemm_packed_b_count(path, l.o, 9 * c);
        l.copy_count = cold ? 1 + (64L << 20) / (l.panel_count * 4) : 1;
        l.copies = aligned_alloc(64, (size_t)(l.copy_count * l.panel_count) * 4);
        mk_sgemm_pack_b(path, l.o, 9 * c, w, 9 * c, l.copies);
        for (long k = 1; k < l.copy_count; k++) memcpy(l.copies + k * l.panel_count, l.copies, (size_t)l.panel_count * 4);
        l.scratch = aligned_alloc(64, (size_t)(l.pixels * 9 * c) * 4);
        l.tasks = 8;
        return l;
    }
    const int t = tile == 0 ? 2 : tile;
    l.matrices = (t + 2) * (t + 2);
    l.tiles = tile == 0 ? old_mk_winograd_f23_tiles(size, size) : mk_winograd_tiles(tile, size, size);
    l.block = block_tiles(l.tiles, c + l.o, l.matrices);
    l.panel = mk_sgemm_packed_b_count(path, 1, 1);
    l.panel_count = mk_sgemm_packed_b_count(path, l.o, c);
    float *u = malloc((size_t)(l.matrices * l.o * c) * 4);
    if (tile == 0) old_mk_winograd_f23_weights(l.o, c, w, u);
    else mk_winograd_weights(tile, l.o, c, w, u);
    const long weight_count = l.matrices * l.panel_count;
    l.copy_count = cold ? 1 + (64L << 20) / (weight_count * 4) : 1;
    l.copies = aligned_alloc(64, (size_t)(l.copy_count * weight_count) * 4);
    for (long e = 0; e < l.matrices; e++) mk_sgemm_pack_b(path, l.o, c, u + e * l.o * c, c, l.copies + e * l.panel_count);
    for (long k = 1; k < l.copy_count; k++) memcpy(l.copies + k * weight_count, l.copies, (size_t)weight_count * 4);
    free(u);
    l.scratch_count = l.matrices * l.block * (c + l.o);
    l.scratch = aligned_alloc(64, (size_t)(2 * l.scratch_count) * 4);
    // As FloatConv2DStep.columnTasks: one task per thread.
    l.column_split = tile != 0 && (split == 1 || (split == -1 && 4 * l.tiles <= l.o && l.tiles <= l.block));
    if (l.column_split) {
        l.tasks = 2;
        l.input_tasks = l.tiles < 8 ? l.tiles : 8;
        if (column_tasks > 0) l.tasks = column_tasks;
    } else {
        const long weight_bytes = l.matrices * l.panel_count * 4, per_thread = weight_bytes <= 256 * 1024 ? 4 : 2;
        const long most = 2 * per_thread < l.tiles / 96 ? 2 * per_thread : l.tiles / 96;
        l.tasks = most > 2 ? most : 2;
    }
    return l;
}

enum { MAX_VARIANTS = 8 };

int main(int argc, char **argv) {
    const int calls = argc > 1 ? atoi(argv[1]) : 50;
    // B variants, comma-separated: "auto" (the plan's choice) or TILE:SPLIT for every layer, SPLIT
    // t (tiles; tu: in blocks of the block size and a rest, as main's driver, not equal blocks) or c
    // (output columns) optionally followed by a task count (c8: 8 tasks; default 2, one per thread);
    // a suffix @KB makes the tile blocks smaller, about KB kilobytes (4:t@512).
    char settings[256];
    snprintf(settings, sizeof settings, "%s", argc > 2 ? argv[2] : "auto");
    // cold: the packed weights cycle through copies filling 64 MB (twice the L3), so they come from
    // memory as at batch 1 in a big model.
    const int cold = argc > 3 && strcmp(argv[3], "cold") == 0;
    const char *names[MAX_VARIANTS];
    int variants = 1;
    names[0] = "A";
    for (char *token = strtok(settings, ","); token != NULL && variants < MAX_VARIANTS; token = strtok(NULL, ","))
        names[variants++] = token;
    pthread_t thread;
    pthread_create(&thread, NULL, worker, NULL);
    const int path = mk_kernels_active();
    const long maps[][2] = {{56, 64}, {28, 128}, {14, 256}, {7, 512}};
    printf("A: main's F(2x2) split by tiles; 2 threads, %d calls each, interleaved%s; median (min) ms, ratio of "
           "medians to A\n", calls, cold ? ", weights cold" : "");
    for (int s = 0; s < 4; s++) {
        const long size = maps[s][0], c = maps[s][1], pixels = size * size;
        float *x = malloc((size_t)(pixels * c) * 4), *w = malloc((size_t)(c * 9 * c) * 4), *bias = malloc((size_t)c * 4);
        srand(7);
        for (long i = 0; i < pixels * c; i++) x[i] = (float)(rand() % 1000) / 1000 - 0.5f;
        for (long i = 0; i < 9 * c * c; i++) w[i] = ((float)(rand() % 1000) / 1000 - 0.5f) * 0.1f;
        for (long i = 0; i < c; i++) bias[i] = 0.01f * (float)(i % 5);
        layer l[MAX_VARIANTS];
        float *y[MAX_VARIANTS];
        double *times[MAX_VARIANTS];
        for (int v = 0; v < variants; v++) {
            y[v] = malloc((size_t)(pixels * c) * 4);
            times[v] = malloc((size_t)calls * sizeof(double));
            int tile = 0, split = 0;
            long column_tasks = 0;
            if (v > 0 && strcmp(names[v], "auto") == 0) {
                tile = pixels >= 400 ? 4 : 2, split = -1;
            } else if (v > 0 && strcmp(names[v], "im2col") == 0) {
                tile = -1;
            } else if (v > 0) {
                tile = names[v][0] - '0', split = names[v][2] == 'c';
                column_tasks = names[v][2] == 'c' ? atol(names[v] + 3) : 0;
            }
            l[v] = make_layer(path, size, c, tile, split, column_tasks, cold, x, w, bias, y[v]);
            l[v].unequal_blocks = v == 0 || (v > 0 && strlen(names[v]) > 3 && names[v][3] == 'u');
            // "@KB": smaller tile blocks, of about KB kilobytes of transformed input and products (at least 12 tiles).
            const char *at = strchr(names[v], '@');
            if (at != NULL && l[v].tile > 0) {
                const long block = block_tiles_of(l[v].tiles, 2 * c, l[v].matrices, atol(at + 1), 12);
                if (block < l[v].block) l[v].block = block;
            }
        }
        for (int warm = 0; warm < 3; warm++)
            for (int v = 0; v < variants; v++) run_layer(&l[v]);
        for (int i = 0; i < calls; i++)
            for (int k = 0; k < variants; k++) {
                const int v = (i + k) % variants;
                const double start = now();
                run_layer(&l[v]);
                times[v][i] = now() - start;
            }
        printf("%2ldx%-2ld c%-3ld", size, c, c);
        double a_median = 0;
        for (int v = 0; v < variants; v++) {
            double worst = 0;
            for (long i = 0; i < pixels * c; i++) worst = fmax(worst, fabs(y[0][i] - y[v][i]));
            qsort(times[v], (size_t)calls, sizeof(double), ascending);
            if (v == 0) a_median = times[v][calls / 2];
            printf(" | %s%s%s %.3f (%.3f) %.2f", names[v], v > 0 && l[v].tile > 0 ? (l[v].column_split ? "=c" : "=t") : "",
                   v > 0 && l[v].tile == 4 ? "4" : "", times[v][calls / 2] * 1e3, times[v][0] * 1e3,
                   times[v][calls / 2] / a_median);
            if (worst > 1e-4) printf(" DIFF %.2g", worst);
        }
        printf("\n");
    }
    return 0;
}
