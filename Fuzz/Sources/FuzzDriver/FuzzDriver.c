#include "FuzzDriver.h"

// Defined by libFuzzer (linked by -sanitize=fuzzer).
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

int modelkit_fuzz_main(int argc, char **argv, modelkit_fuzz_callback callback) {
    return LLVMFuzzerRunDriver(&argc, &argv, callback);
}
