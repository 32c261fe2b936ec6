#include "hpsweep/trials/grid_summary.hpp"

#include <set>

namespace hpsweep {

GridSummary summarize_grid(const JobSpec& job, const std::vector<Trial>& grid) {
  GridSummary s;
  s.params = job.params.size();
  s.tokens = job.tokens.empty() ? job.tokens_per_param.size() : job.tokens.size();
  s.lr = job.lr.size();
  s.batch = job.batch.size();
  s.wd = job.wd.size();
  s.repeats = job.repeats;
  if (!job.points.empty()) {
    std::set<double> params, tokens, lr, batch, wd;
    for (const auto& p : job.points)
      params.insert(p.params), tokens.insert(p.tokens), lr.insert(p.lr), batch.insert(double(p.batch)), wd.insert(p.wd);
    s.params = params.size(), s.tokens = tokens.size(), s.lr = lr.size(), s.batch = batch.size(), s.wd = wd.size();
    s.table_points = job.points.size();
  }
  for (const auto& v : job.variants) s.variants.push_back(v.name);
  s.trials = grid.size();
  for (const auto& t : grid) s.compute += t.point.compute();
  return s;
}

}  // namespace hpsweep
