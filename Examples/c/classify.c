/*
 * classify — run a modelkit image classifier from C.
 *
 *   classify MODEL.mkm IMAGE.npy [THREADS]
 *
 * IMAGE.npy holds raw 8-bit pixels ([H, W] or [H, W, C], dtype uint8), normalised with the
 * model's stored normalisation before the run. Prints the top class as
 *   top-1: <class index> <score> <label>
 * Exit status: 0 on success, 1 on a usage or input error, 2 on a modelkit error.
 */
#include <modelkit.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, mk_status status) {
    fprintf(stderr, "classify: %s: %s: %s\n", what, mk_status_name(status), mk_last_error_message());
    return 2;
}

/* Reads a C-order uint8 .npy file; returns the pixels (malloc'd) and their count, or NULL. */
static unsigned char *read_npy_u8(const char *path, size_t *out_count) {
    FILE *file = fopen(path, "rb");
    if (!file) { fprintf(stderr, "classify: %s: cannot open\n", path); return NULL; }
    unsigned char preamble[10];
    unsigned char *pixels = NULL;
    char *header = NULL;
    if (fread(preamble, 1, 8, file) != 8 || memcmp(preamble, "\x93NUMPY", 6) != 0) goto bad;
    size_t header_length;
    if (preamble[6] == 1) {
        if (fread(preamble + 8, 1, 2, file) != 2) goto bad;
        header_length = preamble[8] | (size_t)preamble[9] << 8;
    } else {
        unsigned char length[4];
        if (fread(length, 1, 4, file) != 4) goto bad;
        header_length = length[0] | (size_t)length[1] << 8 | (size_t)length[2] << 16 | (size_t)length[3] << 24;
    }
    header = calloc(header_length + 1, 1);
    if (!header || fread(header, 1, header_length, file) != header_length) goto bad;
    if (!strstr(header, "'|u1'") || strstr(header, "True")) goto bad;
    const char *shape = strstr(header, "'shape': (");
    if (!shape) goto bad;
    size_t count = 1;
    for (const char *p = shape + 10; *p && *p != ')';) {
        char *end;
        long dim = strtol(p, &end, 10);
        if (end == p) { p++; continue; }
        count *= (size_t)dim;
        p = end;
    }
    pixels = malloc(count ? count : 1);
    if (!pixels || fread(pixels, 1, count, file) != count) goto bad;
    free(header);
    fclose(file);
    *out_count = count;
    return pixels;
bad:
    fprintf(stderr, "classify: %s: not a C-order uint8 .npy file\n", path);
    free(header);
    free(pixels);
    fclose(file);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: classify MODEL.mkm IMAGE.npy [THREADS]\n");
        return 1;
    }
    int status = 2;
    mk_model *model = NULL;
    mk_session_options *options = NULL;
    mk_session *session = NULL;
    float *input = NULL, *scores = NULL;
    size_t pixel_count = 0;
    unsigned char *pixels = read_npy_u8(argv[2], &pixel_count);
    if (!pixels) return 1;

    mk_status s;
    if ((s = mk_model_load(argv[1], &model)) != MK_OK) { status = fail("load", s); goto done; }
    if ((s = mk_session_options_create(&options)) != MK_OK) { status = fail("options", s); goto done; }
    if (argc == 4 && (s = mk_session_options_set_threads(options, atoi(argv[3]))) != MK_OK) {
        status = fail("threads", s);
        goto done;
    }
    if ((s = mk_session_create(model, options, &session)) != MK_OK) { status = fail("session", s); goto done; }

    /* The input: the declared shape with the dynamic batch set to one. */
    size_t inputs = 0, outputs = 0;
    mk_session_input_count(session, &inputs);
    mk_session_output_count(session, &outputs);
    if (inputs != 1 || outputs != 1) {
        fprintf(stderr, "classify: expected one input and one output, the model has %zu and %zu\n", inputs, outputs);
        status = 1;
        goto done;
    }
    mk_input in = {0};
    if ((s = mk_session_input_shape(session, 0, in.shape, MK_MAX_RANK, &in.rank)) != MK_OK) { status = fail("input shape", s); goto done; }
    size_t count = 1;
    for (size_t axis = 0; axis < in.rank; axis++) {
        if (in.shape[axis] < 0) in.shape[axis] = 1;
        count *= (size_t)in.shape[axis];
    }
    if (count != pixel_count) {
        fprintf(stderr, "classify: the image has %zu pixels, the model input takes %zu\n", pixel_count, count);
        status = 1;
        goto done;
    }
    size_t channels = in.rank == 4 ? (size_t)in.shape[3] : 1;
    float scale, mean[16], std[16];
    if (channels > 16) channels = 1;
    if ((s = mk_model_input_normalization(model, channels, &scale, mean, std)) != MK_OK) { status = fail("normalization", s); goto done; }
    input = malloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++) {
        size_t c = i % channels;
        input[i] = (pixels[i] * scale - mean[c]) / std[c];
    }
    in.data = input;
    in.count = count;

    /* The output buffer starts empty and grows to the size the run reports. */
    mk_output out = {0};
    float none;
    out.data = &none;
    s = mk_session_run(session, &in, 1, &out, 1);
    if (s == MK_ERROR_BUFFER_TOO_SMALL) {
        size_t needed = 1;
        for (size_t axis = 0; axis < out.rank; axis++) needed *= (size_t)out.shape[axis];
        scores = malloc(needed * sizeof(float));
        out.data = scores;
        out.capacity = needed;
        s = mk_session_run(session, &in, 1, &out, 1);
    }
    if (s != MK_OK) { status = fail("run", s); goto done; }

    size_t classes = out.rank ? (size_t)out.shape[out.rank - 1] : 1, best = 0;
    for (size_t i = 1; i < classes; i++) if (scores[i] > scores[best]) best = i;
    size_t label_count = 0;
    const char *label = "";
    mk_model_label_count(model, &label_count);
    if (best < label_count) mk_model_label(model, best, &label);
    printf("top-1: %zu %.6f %s\n", best, scores[best], label);
    status = 0;

done:
    mk_session_free(session);
    mk_session_options_free(options);
    mk_model_free(model);
    free(input);
    free(scores);
    free(pixels);
    return status;
}
