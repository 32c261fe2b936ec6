// Throughput of the run-log parsers on one large run held in memory (no disk, no MPI): MB/s of
// parse_tensorboard_run, parse_jsonl_run and parse_wandb_run on wandb-history.jsonl (every row
// through the JSON parser). Built and run by tests/bench/ingest_bench.sh.
//
//   log_parser_bench tensorboard EVENTS_FILE CONFIG_FILE | jsonl METRICS_FILE CONFIG_FILE |
//                    wandb-history HISTORY_FILE CONFIG_FILE   [SECONDS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "hpsweep/ingest/log_ingest.hpp"

namespace {
std::string slurp(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s tensorboard|jsonl|wandb-history LOG CONFIG [SECONDS]\n", argv[0]);
    return 2;
  }
  const std::string kind = argv[1];
  const std::string log = slurp(argv[2]), config = slurp(argv[3]);
  const double min_seconds = argc > 4 ? std::atof(argv[4]) : 3.0;
  const hpsweep::LogIngestOptions options;
  auto parse = [&] {
    if (kind == "tensorboard")
      return hpsweep::parse_tensorboard_run({hpsweep::RunFile{argv[2], log, ""}}, hpsweep::RunFile{argv[3], config, ""},
                                            options);
    if (kind == "wandb-history")
      return hpsweep::parse_wandb_run(hpsweep::RunFile{argv[2], log, ""}, hpsweep::RunFile{argv[3], config, ""},
                                      options);
    return hpsweep::parse_jsonl_run(log, argv[2], config, argv[3], options);
  };
  const hpsweep::ParsedRun first = parse();
  if (!first.ok) {
    std::fprintf(stderr, "parse failed: %s\n", first.error.c_str());
    return 1;
  }
  std::size_t runs = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double seconds = 0;
  while (seconds < min_seconds) {
    if (!parse().ok) return 1;
    ++runs;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double mb = static_cast<double>(log.size()) * static_cast<double>(runs) / 1e6;
  std::printf("%s %.1f MB/s (%zu points, %.1f MB file, %zu parses in %.2f s)\n", kind.c_str(), mb / seconds,
              first.record.outcome.curve.step.size(), static_cast<double>(log.size()) / 1e6, runs, seconds);
  return 0;
}
