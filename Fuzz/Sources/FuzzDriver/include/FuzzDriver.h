#ifndef MODELKIT_FUZZ_DRIVER_H
#define MODELKIT_FUZZ_DRIVER_H
#include <stddef.h>
#include <stdint.h>

/// One fuzz input; returns 0 (libFuzzer reserves other values).
typedef int (*modelkit_fuzz_callback)(const uint8_t *data, size_t size);

/// Hands control to libFuzzer (LLVMFuzzerRunDriver) with the process's arguments. SwiftPM renames an
/// executable's entry point, so libFuzzer's own main() cannot be used; the target's main calls this.
int modelkit_fuzz_main(int argc, char **argv, modelkit_fuzz_callback callback);

#endif
