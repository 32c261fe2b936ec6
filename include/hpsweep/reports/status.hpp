#pragma once
// `hpsweep status FILE`: counts per state, trials and best loss per (N, D) cell, launches.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "hpsweep/store/records.hpp"

namespace hpsweep {

struct CellStatus {
  std::string variant;  // [variants] name, "" when the job has none
  double params = 0, tokens = 0;
  std::size_t trials = 0, finished = 0, diverged = 0, failed = 0;
  bool has_best = false;
  double best_loss = 0;
  TrialPoint best;
  TrialId best_id = 0;
};

struct SweepStatus {
  std::string name;
  std::size_t grid_size = 0;
  std::map<TrialState, std::size_t> by_state;  // over grid ids, latest record of each
  std::size_t records = 0;                     // rows in the trial table (attempts)
  std::vector<CellStatus> cells;               // by N then D
  std::vector<LaunchRecord> launches;
  bool live = false;                  // a launch without an end record: running now, or killed
  std::vector<std::string> warnings;  // the store's: the .h5 and its journal disagree, a damaged journal
};

SweepStatus summarize(const SweepLog& log);
std::string format_status(const SweepStatus& s, std::size_t max_launches = 5, std::size_t max_cells = SIZE_MAX);
std::string status_json(const SweepStatus& s);

}  // namespace hpsweep
