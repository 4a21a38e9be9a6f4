// The Swift implementation (Sources/ModelKitC) reads these structs through this header, so their
// layout is whatever the C compiler gives; these checks pin the ABI promised to callers on LP64.
#include "modelkit.h"

_Static_assert(sizeof(mk_input) == 8 + 8 + 8 * MK_MAX_RANK + 8, "mk_input layout changed");
_Static_assert(sizeof(mk_output) == 8 + 8 + 8 * MK_MAX_RANK + 8, "mk_output layout changed");
_Static_assert(sizeof(mk_status) == 4, "mk_status must be int-sized");
