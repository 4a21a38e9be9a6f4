/*
 * modelkit.h — the C API of the modelkit runtime.
 *
 * Load a .mkm model (from a path or from memory), create a session on it, describe its
 * inputs and outputs, and run it on caller-owned float buffers.
 *
 * Conventions
 *  - Every fallible call returns an mk_status. On failure, mk_last_error_message() returns a
 *    one-line message for the calling thread (valid until that thread's next failed call).
 *  - Out-parameters are written only on MK_OK (except where a function says otherwise).
 *  - Handles are opaque. A model may be shared by any number of sessions and threads; a
 *    session must be run by one thread at a time (create one session per thread).
 *  - Free handles with the matching *_free function; freeing NULL is a no-op. A session keeps
 *    what it needs from its model, so the model may be freed first.
 *  - Strings returned by the library are owned by the handle they came from.
 *  - Shapes are int64 arrays; a dimension of -1 is dynamic (the batch dimension).
 *
 * Link with libmodelkit_c.so (shared) or libmodelkit_c_static.a (static; see
 * Examples/c/README.md for the Swift runtime libraries it needs).
 */
#ifndef MODELKIT_H
#define MODELKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. Values are stable; new codes are only appended. */
typedef enum {
    MK_OK = 0,
    MK_ERROR_INVALID_ARGUMENT = 1,  /* a NULL pointer, an index out of range, a bad option */
    MK_ERROR_NOT_FOUND = 2,         /* the model file does not exist */
    MK_ERROR_IO = 3,                /* the model file exists but cannot be read */
    MK_ERROR_INVALID_MODEL = 4,     /* corrupt, truncated, unsupported or inconsistent model */
    MK_ERROR_SHAPE_MISMATCH = 5,    /* an input's shape or length does not fit the model */
    MK_ERROR_BUFFER_TOO_SMALL = 6,  /* a caller buffer cannot hold the result */
    MK_ERROR_OUT_OF_MEMORY = 7,
    MK_ERROR_INTERNAL = 8,
} mk_status;

/* Element types. */
typedef enum {
    MK_DTYPE_FLOAT32 = 0,
    MK_DTYPE_INT8 = 1,
    MK_DTYPE_UINT8 = 2,
    MK_DTYPE_INT32 = 3,
} mk_dtype;

/* Largest tensor rank the run structs carry. */
#define MK_MAX_RANK 8

typedef struct mk_model mk_model;
typedef struct mk_session mk_session;
typedef struct mk_session_options mk_session_options;

/* One input of mk_session_run: `count` floats at `data`, row-major in `shape[0..rank)`. */
typedef struct {
    const float *data;
    size_t count;
    int64_t shape[MK_MAX_RANK];
    size_t rank;
} mk_input;

/* One output of mk_session_run: room for `capacity` floats at `data`. The run writes the
 * output's shape to shape/rank, also when it fails with MK_ERROR_BUFFER_TOO_SMALL, so the
 * caller can grow the buffer and run again. */
typedef struct {
    float *data;
    size_t capacity;
    int64_t shape[MK_MAX_RANK];
    size_t rank;
} mk_output;

/* The message of the calling thread's last failed call ("" if none; successful calls leave it
 * unchanged). Never NULL. */
const char *mk_last_error_message(void);
/* "MK_OK", "MK_ERROR_NOT_FOUND", ...; "MK_UNKNOWN_STATUS" for other values. Never NULL. */
const char *mk_status_name(mk_status status);
/* The library version, e.g. "0.1.0". */
const char *mk_version(void);

/* ---- Models ---- */

mk_status mk_model_load(const char *path, mk_model **out_model);
/* `data` is copied; the caller may release it once the call returns. */
mk_status mk_model_load_from_memory(const void *data, size_t size, mk_model **out_model);
void mk_model_free(mk_model *model);

/* Class names stored in the model (0 when it has none). */
mk_status mk_model_label_count(const mk_model *model, size_t *out_count);
mk_status mk_model_label(const mk_model *model, size_t index, const char **out_label);
/* The input normalisation stored in the model, for raw 8-bit pixels of channel c:
 *   x = (pixel * pixel_scale - mean[c]) / std[c].
 * Fills mean[0..channels) and std[0..channels); a model without one reports 1/255, 0, 1. */
mk_status mk_model_input_normalization(const mk_model *model, size_t channels, float *out_pixel_scale,
                                       float *out_mean, float *out_std);

/* ---- Session options ---- */

mk_status mk_session_options_create(mk_session_options **out_options);
/* Worker threads for the kernels (default 1; must be 1..256). */
mk_status mk_session_options_set_threads(mk_session_options *options, int32_t threads);
void mk_session_options_free(mk_session_options *options);

/* ---- Sessions ---- */

/* `options` may be NULL (defaults). Verifies the graph and plans it for a batch of one. */
mk_status mk_session_create(const mk_model *model, const mk_session_options *options, mk_session **out_session);
void mk_session_free(mk_session *session);

mk_status mk_session_input_count(const mk_session *session, size_t *out_count);
mk_status mk_session_output_count(const mk_session *session, size_t *out_count);
/* The name is owned by the session. */
mk_status mk_session_input_name(const mk_session *session, size_t index, const char **out_name);
mk_status mk_session_output_name(const mk_session *session, size_t index, const char **out_name);
mk_status mk_session_input_dtype(const mk_session *session, size_t index, mk_dtype *out_dtype);
mk_status mk_session_output_dtype(const mk_session *session, size_t index, mk_dtype *out_dtype);
/* Declared shapes, -1 for a dynamic dimension. Writes *out_rank always; writes the dims when
 * capacity >= rank, else returns MK_ERROR_BUFFER_TOO_SMALL. */
mk_status mk_session_input_shape(const mk_session *session, size_t index, int64_t *dims, size_t capacity,
                                 size_t *out_rank);
mk_status mk_session_output_shape(const mk_session *session, size_t index, int64_t *dims, size_t capacity,
                                  size_t *out_rank);

/* Runs the model. inputs[i] feeds input i and outputs[i] receives output i, in the order of
 * the index functions above; the counts must equal the model's. After the first run at a
 * given set of input shapes, a run allocates no memory. */
mk_status mk_session_run(mk_session *session, const mk_input *inputs, size_t input_count, mk_output *outputs,
                         size_t output_count);

#ifdef __cplusplus
}
#endif

#endif
