// exec/init/blob.cpp — the static builder-init program (builder_init.c), embedded in
// builder's binary by the assembler, so a sandbox can exec it from a sealed memfd
// without finding or trusting any file on the host. BUILDER_INIT_PATH is set by CMake.
#include <cstddef>

__asm__(
    "  .section .rodata\n"
    "  .balign 16\n"
    "  .global builder_init_blob_start\n"
    "  .global builder_init_blob_end\n"
    "builder_init_blob_start:\n"
    "  .incbin \"" BUILDER_INIT_PATH "\"\n"
    "builder_init_blob_end:\n"
    "  .previous\n");
