// The libFuzzer entry point: one input is one Dockerfile, run through harness.h. Only
// base::Error is an expected outcome (swallowed inside the harness); any other exception
// is printed and aborts, so libFuzzer saves the input as a crash.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>

#include "harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    builder::fuzz::run_frontend(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_frontend: unexpected exception: %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz_frontend: unexpected non-std exception\n");
    std::abort();
  }
  return 0;
}
