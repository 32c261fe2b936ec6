// libFuzzer target for the run-directory parsers (hpsweep/ingest/log_ingest.hpp): jsonl, megatron,
// tensorboard (TFRecord + Event protobuf), lightning, mlflow, hf-trainer, torchtitan, and the
// JSON/YAML/TOML config readers behind them.
// The input is split by parse_fuzz_input (byte 0: layout; then log \0 config \0 run name), so the
// unit test LogIngest.FuzzRegressionsParseWithoutCrashing replays crashers exactly. Besides
// crashes and undefined behaviour, a result that breaks the parsers' promises (check_parsed_run:
// half-filled bad runs, errors not "where:line: reason", inconsistent ok records) aborts too.
// Build and run: tests/fuzz/run_fuzz.sh [seconds].
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "hpsweep/ingest/log_ingest.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const hpsweep::ParsedRun run = hpsweep::parse_fuzz_input(input);
  const std::string broken = hpsweep::check_parsed_run(run);
  if (!broken.empty()) {
    std::fprintf(stderr, "log parser broke a promise: %s\n  ok=%d error=%s\n", broken.c_str(), run.ok ? 1 : 0,
                 run.error.c_str());
    std::abort();
  }
  return 0;
}
