#include "hpsweep/trials/grid_summary.hpp"

namespace hpsweep {

GridSummary summarize_grid(const JobSpec& job, const std::vector<Trial>& grid) {
  GridSummary s;
  s.params = job.params.size();
  s.tokens = job.tokens.empty() ? job.tokens_per_param.size() : job.tokens.size();
  s.lr = job.lr.size();
  s.batch = job.batch.size();
  s.wd = job.wd.size();
  s.repeats = job.repeats;
  for (const auto& v : job.variants) s.variants.push_back(v.name);
  s.trials = grid.size();
  for (const auto& t : grid) s.compute += t.point.compute();
  return s;
}

}  // namespace hpsweep
