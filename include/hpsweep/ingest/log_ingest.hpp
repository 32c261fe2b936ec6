#pragma once
// Parsing the run directories that cluster training runs leave behind (one run per directory),
// for `hpsweep ingest DIR --layout jsonl|megatron`. examples/ingest/README.md documents both
// layouts. Every parser is a pure function of its inputs, never throws for bad content and is
// safe to call from many threads at once: a bad run comes back as ok = false with a
// "path:line: reason" message (line 0 when the reason is not tied to a line), never as a
// half-filled record.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hpsweep/store/records.hpp"

namespace hpsweep {

enum class LogLayout { JsonLines, Megatron };

// "jsonl" | "megatron" (case-insensitive). Throws InputError otherwise, with a suggestion.
LogLayout parse_layout(const std::string& name);
const char* to_string(LogLayout layout);  // "jsonl" | "megatron"

// Defaults for what a run's config (or its name) does not say.
struct LogIngestOptions {
  std::int64_t seq_len = 2048;  // tokens per sequence
  double wd = 0.1;              // AdamW weight decay
};

// A last logged loss above this (or non-finite) makes the run DIVERGED.
inline constexpr double kLogIngestDivergedAbove = 1e4;

struct ParsedRun {
  bool ok = false;
  std::string error;  // when !ok: "path:line: reason" (line 0 if not line-specific)
  // When ok: trial.point (params, tokens, lr, batch in sequences, seq_len, wd), trial.id =
  // ingested_trial_id(point, smooth_loss); outcome: state DONE or DIVERGED, final_loss = last
  // logged loss, smooth_loss = smoothed_final_loss(curve), steps = last logged step, the whole
  // curve, error = why it is DIVERGED; source = "ingest:<dir>".
  TrialRecord record;
  bool finished = false;         // last step >= target_step - log_interval
  std::int64_t target_step = 0;  // when ok: the step the run was meant to reach
  double log_interval = 0;       // when ok: median spacing of the logged steps (0 for one point)
  std::size_t bytes = 0;         // bytes read (for throughput figures), also when !ok
};

// Pure functions on text (what the fuzzer drives); the `where` arguments name the files in
// messages. The record's source is "ingest:" + the directory part of metrics_where/log_where.
ParsedRun parse_jsonl_run(const std::string& metrics_text, const std::string& metrics_where,
                          const std::string& config_text, const std::string& config_where,
                          const LogIngestOptions& options);
// config_text empty: hyperparameters come from run_name (the Step Law name pattern).
ParsedRun parse_megatron_run(const std::string& log_text, const std::string& log_where, const std::string& run_name,
                             const std::string& config_text, const std::string& config_where,
                             const LogIngestOptions& options);

// A run directory. jsonl: <dir>/metrics.jsonl + <dir>/config.json. megatron: <dir>/train.log (or
// the single *.log file in it) + optional <dir>/config.json; without a config the hyperparameters
// come from the directory name. source = "ingest:<dir>" (trailing slashes removed).
ParsedRun parse_run_directory(const std::string& dir, LogLayout layout, const LogIngestOptions& options);

// Every directory under `root` (root included, recursively, symlinked directories not followed)
// that holds a metrics.jsonl (jsonl) or a *.log file (megatron), sorted. Throws InputError when
// root is not a readable directory.
std::vector<std::string> find_run_directories(const std::string& root, LogLayout layout);

// ---- Fuzzing support, shared by tests/fuzz/fuzz_log_parsers.cpp and the unit tests ----------
// Input layout: byte 0 selects the parser (even: jsonl, odd: megatron; 'J' and 'M' read well),
// the rest is split at NUL bytes into [metrics or log text] \0 [config text] \0 [run name].
// Missing parts are empty. Uses the default LogIngestOptions.
ParsedRun parse_fuzz_input(std::string_view data);
std::string make_fuzz_input(LogLayout layout, std::string_view log_text, std::string_view config_text,
                            std::string_view run_name);
// "" when the result keeps the parsers' promises (an ok run is complete and self-consistent, a
// bad run carries a "where:line: reason" error and an empty record); else what is broken.
std::string check_parsed_run(const ParsedRun& run);

}  // namespace hpsweep
