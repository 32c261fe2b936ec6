#pragma once
// Parsing the run directories that cluster training runs leave behind (one run per directory),
// for `hpsweep ingest DIR --layout auto|jsonl|megatron|tensorboard|lightning|mlflow|hf-trainer|
// torchtitan`. examples/ingest/README.md documents every layout. Every parser is a pure function of its inputs, never
// throws for bad content and is safe to call from many threads at once: a bad run comes back as ok = false with a
// "path:line: reason" message (line 0 when the reason is not tied to a line), never as a
// half-filled record.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hpsweep/store/records.hpp"

namespace hpsweep {

// Auto: each directory by the files it holds (detect_layout).
enum class LogLayout { JsonLines, Megatron, TensorBoard, Lightning, MLflow, HfTrainer, Torchtitan, Wandb, Auto };

// "jsonl" | "megatron" | "tensorboard" | "lightning" | "mlflow" | "hf-trainer" | "torchtitan" |
// "wandb" | "auto" (case-insensitive). Throws InputError otherwise, with a suggestion.
LogLayout parse_layout(const std::string& name);
const char* to_string(LogLayout layout);

// Defaults for what a run's config (or its name) does not say.
struct LogIngestOptions {
  std::int64_t seq_len = 2048;  // tokens per sequence
  double wd = 0.1;              // AdamW weight decay
  // `--map lr=KEY,batch=KEY,params=KEY,tokens=KEY|steps=KEY,seq_len=KEY,wd=KEY,loss=TAG`: KEY a
  // dotted path into the run's config, TAG the loss metric's name. Empty: the defaults
  // (log_ingest_config.cpp, examples/ingest/README.md). Used by every layout but jsonl and
  // megatron, whose config.json keys are fixed.
  std::string map;
  bool batch_in_tokens = false;  // the config's batch counts tokens (`--batch-unit tokens`)
};

// Throws InputError when `spec` is not a valid --map for run directories.
void check_hyper_map(const std::string& spec);

// One file of a run: its path (for messages) and its bytes. `key` names it where the layout
// needs a name (an MLflow metric or param). An empty `where` means "absent".
struct RunFile {
  std::string where;
  std::string text;
  std::string key;
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

// The other layouts (examples/ingest/README.md). `config`: the run's own config, read as JSON,
// YAML or TOML by its extension (.json, .yaml/.yml, .toml); absent when config.where is empty.
// A damaged or truncated TFRecord makes the run bad with "path:offset: reason".
ParsedRun parse_tensorboard_run(const std::vector<RunFile>& event_files, const RunFile& config,
                                const LogIngestOptions& options);
ParsedRun parse_lightning_run(const RunFile& metrics_csv, const RunFile& hparams_yaml, const LogIngestOptions& options);
// metrics: files of metrics/ with key = the metric name; params: files of params/ with key = the name.
ParsedRun parse_mlflow_run(const RunFile& meta_yaml, const std::vector<RunFile>& metrics,
                           const std::vector<RunFile>& params, const LogIngestOptions& options);
ParsedRun parse_hf_trainer_run(const RunFile& trainer_state, const RunFile& config, const LogIngestOptions& options);
ParsedRun parse_torchtitan_run(const RunFile& log, const RunFile& config, const LogIngestOptions& options);
// log: a run-*.wandb file (by its extension) or a wandb-history.jsonl; config: the run's
// config.yaml (absent when where is empty), under the .wandb file's own config records.
ParsedRun parse_wandb_run(const RunFile& log, const RunFile& config, const LogIngestOptions& options);

// The layout of one run directory (never Auto), by the files it holds; for a *.log file, by its
// first lines (Megatron's "lm loss" or torchtitan's "step: N loss: X"). False when none fits.
bool detect_layout(const std::string& dir, LogLayout& layout);

// A run directory. jsonl: <dir>/metrics.jsonl + <dir>/config.json. megatron: <dir>/train.log (or
// the single *.log file in it) + optional <dir>/config.json; without a config the hyperparameters
// come from the directory name. source = "ingest:<dir>" (trailing slashes removed).
ParsedRun parse_run_directory(const std::string& dir, LogLayout layout, const LogIngestOptions& options);

// Every directory under `root` (root included, recursively, symlinked directories not followed)
// that holds the marker file of `layout` (metrics.jsonl, *.log, events.out.tfevents.*,
// metrics.csv, meta.yaml beside metrics/, trainer_state.json (the checkpoint's parent), *.log
// or *.out, run-*.wandb or wandb-history.jsonl; Auto: any of them), sorted. Throws InputError when
// root is not a readable directory.
std::vector<std::string> find_run_directories(const std::string& root, LogLayout layout);

// ---- Fuzzing support, shared by tests/fuzz/fuzz_log_parsers.cpp and the unit tests ----------
// Input layout: byte 0 selects the parser ('T' tensorboard, 'L' lightning, 'F' mlflow, 'H'
// hf-trainer, 'C' torchtitan, 'W' wandb (.wandb file), 'w' wandb (wandb-history.jsonl), 'K' the TOML reader (the whole
// rest is a torchtitan config.toml beside a fixed valid log); any other byte: even jsonl, odd megatron, so 'J' and 'M'
// read well), the rest is split at NUL bytes into [metrics or log text] \0 [config text] \0 [run name]. Missing parts
// are empty. Uses the default LogIngestOptions. The new layouts read part 2 as the config's file name (its extension
// picks JSON/YAML/TOML; mlflow: "key value" param lines).
ParsedRun parse_fuzz_input(std::string_view data);
std::string make_fuzz_input(LogLayout layout, std::string_view log_text, std::string_view config_text,
                            std::string_view run_name);
// "" when the result keeps the parsers' promises (an ok run is complete and self-consistent, a
// bad run carries a "where:line: reason" error and an empty record); else what is broken.
std::string check_parsed_run(const ParsedRun& run);

}  // namespace hpsweep
