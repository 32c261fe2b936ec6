#pragma once
// The external-command backend: each trial runs the user's training program as a child process
// of its worker rank, without a shell. Result protocol (README "Command backend"): the program
// prints, as its last JSON line on stdout (or writes to {trial_dir}/metrics.json with
// `result = file`), an object like
//   {"loss": 2.31, "smooth_loss": 2.30, "steps": 1000, "curve": {"step": [...], "loss": [...]},
//    "diverged": false}
// where only "loss" is required.
#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "hpsweep/backends/backend.hpp"

namespace hpsweep {

struct CommandSettings {
  std::vector<std::string> argv;  // template, split like a shell would but never run by one
  double timeout_s = 0;           // 0: no limit
  bool result_from_file = false;  // else the last JSON line of stdout
  std::string trial_root;         // per-trial folders live here: <trial_root>/<id>/
  static CommandSettings from_options(const std::map<std::string, std::string>& options, const std::string& trial_root);
};

// Splits "a 'b c' \"d\"" into {a, b c, d}. Throws InputError on an unclosed quote.
std::vector<std::string> split_command_line(const std::string& text);
// Replaces {lr}, {batch}, {batch_tokens}, {wd}, {params}, {tokens}, {seq_len}, {steps}, {seed},
// {repeat}, {id}, {trial_dir} and the placement's {gpus}, {gpus_per_node}, {devices}, {cpus},
// {nnodes}, {hosts}, {master_addr} in each argument. Throws InputError naming an unknown placeholder.
std::vector<std::string> expand_argv(const std::vector<std::string>& templ, const Trial& trial, std::uint64_t seed,
                                     const std::string& trial_dir, const Placement& placement = {});
// Parses the result protocol. Returns false (with a reason) when there is no valid result.
bool parse_command_result(const std::string& text, bool whole_text_is_json, TrialOutcome& out, std::string& why);

class CommandBackend : public Backend {
 public:
  CommandBackend(CommandSettings settings, std::uint64_t sweep_seed)
      : s_(std::move(settings)), sweep_seed_(sweep_seed) {}
  TrialOutcome run(const Trial& trial) override { return run_placed(trial, Placement{}); }
  // The program sees only its devices: CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES and
  // HIP_VISIBLE_DEVICES list them (empty for a trial placed without GPUs).
  TrialOutcome run_placed(const Trial& trial, const Placement& placement) override;
  void cancel() override { cancelled_ = true; }

 private:
  CommandSettings s_;
  std::atomic<bool> cancelled_{false};
  std::uint64_t sweep_seed_;
};

}  // namespace hpsweep
