// libFuzzer entry for one fuzz target of tests/fuzz/fuzz_targets.hpp, chosen at compile time:
//   -DHPSWEEP_FUZZ_TARGET=fuzz_log_parsers|fuzz_csv_ingest|fuzz_job_file|fuzz_command_result
//   -DHPSWEEP_FUZZ_BYTE0="'T'"   (optional) prepend this byte to every input, so that a run of the
//                                log target spends all its executions on one layout
// A target that reports a broken promise aborts, so libFuzzer keeps the input as a crasher.
// Built and run by tests/fuzz/run_fuzz.sh.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
#ifdef HPSWEEP_FUZZ_BYTE0
  std::string fixed(1, HPSWEEP_FUZZ_BYTE0);
  fixed.append(input);
  input = fixed;
#endif
  const std::string broken = hpsweep::fuzz::HPSWEEP_FUZZ_TARGET(input);
  if (!broken.empty()) {
    std::fprintf(stderr, "parser broke a promise: %s\n", broken.c_str());
    std::abort();
  }
  return 0;
}
