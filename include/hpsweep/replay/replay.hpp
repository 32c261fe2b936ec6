#pragma once
// `hpsweep replay FILE`: reuse a finished (or partial) sweep without MPI and without running
// anything: audit stored fits, replay the timeline of the laws, and simulate other allocations.
#include <string>
#include <vector>

#include "hpsweep/reducer/fit.hpp"
#include "hpsweep/store/records.hpp"

namespace hpsweep {

struct RefitCheck {
  std::string name;
  bool identical = false;
  std::size_t coefficients = 0, differing = 0;
  double max_abs_difference = 0;
  std::string first_difference;  // "law.name: stored X, now Y"
};
// Re-fits every stored fit from the trials it saw and its stored options, and compares.
std::vector<RefitCheck> refit_stored(const SweepLog& log);

struct TimelinePoint {
  double fraction = 0;  // of the recorded trials
  std::size_t trials = 0, cells = 0;
  bool fitted = false;
  std::string why_not;  // when not fitted: the fit's message
  double lr_n_exp = 0, lr_d_exp = 0, batch_d_exp = 0;
  Interval lr, batch_tokens;               // prediction at the target (when there is one)
  std::size_t cells_at_final_optimum = 0;  // cells whose current argmin is already the final one
};
struct Timeline {
  std::vector<TimelinePoint> points;
  bool has_target = false;
  double stop_fraction = -1;  // from here on the predicted lr and B stay inside the final 95% intervals
};
Timeline replay_timeline(const SweepLog& log, const FitOptions& options, int steps = 10);

struct WhatIfRow {
  int ranks = 0, workers = 0;
  int gpus_per_node = 0;  // > 0: the job's [resources] packed onto workers of this many GPUs
  double dynamic_makespan = 0, static_makespan = 0, ideal = 0;
  double dynamic_utilisation = 0, static_utilisation = 0;  // of worker-seconds, or of GPU-seconds when packed
};
// Recorded durations (latest terminal record per id) on R ranks: the real master loop over
// simulated workers, and a naive static round-robin partition. With `gpus_per_node` > 0 the
// stored job's [resources] are packed onto R-1 nodes of that many GPUs, as `hpsweep run` would
// (static is then one trial at a time per node, round-robin: one rank per node without packing).
std::vector<WhatIfRow> what_if(const SweepLog& log, const std::vector<int>& ranks, int prefetch = 2,
                               int gpus_per_node = 0);
// Seconds from the first start to the last end of the trials the latest launch ran (0 if none):
// the measured makespan the what-if table is compared with.
double recorded_makespan(const SweepLog& log);

std::string format_refit(const std::vector<RefitCheck>& checks);
std::string format_timeline(const Timeline& t);
std::string format_what_if(const std::vector<WhatIfRow>& rows, double recorded_makespan);

}  // namespace hpsweep
