#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "hpsweep/spec/job.hpp"
#include "hpsweep/trials/trial.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {
// A larger grid is an input error (README "Job file"): each trial costs about 0.5 kB in the
// master and the store, and expanding 2e7 took 8 GB and 80 s without answering SIGINT.
constexpr std::size_t kMaxGridTrials = 500000;
}  // namespace

std::vector<Trial> expand_grid(const JobSpec& job) {
  // Checked before anything is allocated: every trial costs memory in the master and the store.
  const bool table = !job.points.empty();  // kind = lookup: the table's points, not a product
  const std::vector<std::pair<std::string, double>> sizes = {
      {"[lookup] table points", table ? double(job.points.size()) : 1.0},
      {"[scales] params", table ? 1.0 : double(job.params.size())},
      {"[scales] tokens", table ? 1.0 : double(job.tokens.size() + job.tokens_per_param.size())},
      {"[grid] lr", table ? 1.0 : double(job.lr.size())},
      {"[grid] batch", table ? 1.0 : double(job.batch.size())},
      {"[grid] wd", table ? 1.0 : double(job.wd.size())},
      {"[sweep] repeats", double(job.repeats)},
      {"[variants]", double(std::max<std::size_t>(1, job.variants.size()))}};
  double total = 1.0;
  std::string product;
  for (const auto& [field, n] : sizes) {
    total *= n;
    if (n != 1) product += (product.empty() ? "" : " x ") + field + " " + std::to_string(std::llround(n));
  }
  if (total == 0) throw InputError(job.path + ": the grid is empty");
  if (total > static_cast<double>(kMaxGridTrials))
    throw InputError(job.path + ": the grid has " +
                     (total < 1e18 ? std::to_string(std::llround(total)) : format_short(total)) + " trials (" +
                     product + "); the limit is " + std::to_string(kMaxGridTrials) +
                     " trials per sweep: use fewer values");

  std::vector<Trial> trials;
  trials.reserve(static_cast<std::size_t>(total));
  std::unordered_map<TrialId, std::size_t> seen;
  std::vector<const Variant*> variants;
  for (const auto& v : job.variants) variants.push_back(&v);
  if (variants.empty()) variants.push_back(nullptr);
  auto add = [&](const TrialPoint& point, const Variant* variant) {
    Trial t;
    t.point = point;
    t.id = trial_id(t.point, variant ? variant->result_settings : job.result_settings);
    if (!seen.emplace(t.id, trials.size()).second)
      throw InputError(job.path + ": two grid points share trial id " + hex64(t.id) + " (" +
                       canonical_coordinates(t.point) + "); check for duplicate scales");
    trials.push_back(t);
  };
  for (const Variant* variant : variants)
    for (const GridPoint& g : job.points)
      for (int r = 0; r < job.repeats; ++r)
        add(TrialPoint{g.params, g.tokens, g.lr, g.batch, job.seq_len, g.wd, r, variant ? variant->name : ""}, variant);
  for (const Variant* variant : variants)
    for (double n : job.params)
      for (double d : job.token_budgets_for(n)) {
        if (d < 1) throw InputError(job.path + ": token budget for N=" + format_short(n) + " rounds to zero");
        for (double lr : job.lr)
          for (std::int64_t b : job.batch)
            for (double wd : job.wd)
              for (int r = 0; r < job.repeats; ++r)
                add(TrialPoint{n, d, lr, b, job.seq_len, wd, r, variant ? variant->name : ""}, variant);
      }
  // Most expensive first keeps the tail of the sweep short; ids break ties deterministically.
  std::sort(trials.begin(), trials.end(), [](const Trial& a, const Trial& b) {
    const double ca = a.point.compute(), cb = b.point.compute();
    return ca != cb ? ca > cb : a.id < b.id;
  });
  return trials;
}

}  // namespace hpsweep
