#pragma once
// The size of a job's grid, factor by factor, and its total proxy compute (`hpsweep validate`).
#include <cstddef>
#include <string>
#include <vector>

#include "hpsweep/spec/job.hpp"
#include "hpsweep/trials/trial.hpp"

namespace hpsweep {

struct GridSummary {
  std::size_t params = 0, tokens = 0, lr = 0, batch = 0, wd = 0;  // values per factor
  int repeats = 1;
  std::vector<std::string> variants;  // [variants] row names; empty for an ordinary sweep
  std::size_t table_points = 0;       // kind = lookup without [scales]/[grid]: the table's points (not a product)
  std::size_t trials = 0;
  double compute = 0;  // FLOPs: each trial's 6ND, summed
};

// `grid` is expand_grid(job).
GridSummary summarize_grid(const JobSpec& job, const std::vector<Trial>& grid);

}  // namespace hpsweep
