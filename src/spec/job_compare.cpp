#include "hpsweep/spec/job_compare.hpp"

#include <algorithm>
#include <map>
#include <unordered_set>

#include "hpsweep/util/error.hpp"

namespace hpsweep {

namespace {

const std::vector<std::string> kGridKeys = {"grid.points", "scales.params", "scales.tokens", "scales.tokens_per_param",
                                            "grid.lr",     "grid.batch",    "grid.wd",       "sweep.repeats"};
// Keys that change no trial: the name and the target only matter to reports.
const std::vector<std::string> kCosmeticKeys = {"sweep.name", "target.params", "target.tokens"};
// [adaptive] decides which grid points run, never what a trial gives: a raised budget continues the plan.
bool is_plan_key(const std::string& key) { return key.rfind("adaptive.", 0) == 0; }

bool contains(const std::vector<std::string>& v, const std::string& k) {
  return std::find(v.begin(), v.end(), k) != v.end();
}

// Keys whose change adds or removes trials rather than changing existing ones: the grid, and the
// [variants] rows (a variant's settings are part of its own trials' ids).
bool is_grid_key(const std::string& key) { return contains(kGridKeys, key) || key.rfind("variants.", 0) == 0; }

}  // namespace

std::string explain_incompatibility(const std::string& stored_job_text, const JobSpec& job, const GridIds& grid_ids,
                                    bool extend, bool* needs_extend) {
  if (needs_extend) *needs_extend = false;
  if (stored_job_text == job.text) return "";
  JobSpec old;
  try {
    old = parse_job(stored_job_text, kStoredJobName);
  } catch (const InputError& e) {
    return std::string("the job stored in the file no longer parses with this hpsweep: ") + e.what();
  }
  std::string diff;
  std::map<std::string, std::string> keys = old.canonical;
  for (const auto& [k, v] : job.canonical) keys.emplace(k, v);
  for (const auto& [k, unused] : keys) {
    if (is_grid_key(k) || contains(kCosmeticKeys, k) || is_plan_key(k)) continue;
    const auto a = old.canonical.count(k) ? old.canonical.at(k) : "(unset)";
    const auto b = job.canonical.count(k) ? job.canonical.at(k) : "(unset)";
    if (a != b) diff += "\n  " + k + ": stored " + a + ", now " + b;
  }
  if (!diff.empty()) return "settings that change trial results differ:" + diff;

  std::unordered_set<std::uint64_t> new_ids;
  for (const std::uint64_t id : grid_ids(job)) new_ids.insert(id);
  std::size_t removed = 0, added = 0;
  std::unordered_set<std::uint64_t> old_ids;
  for (const std::uint64_t id : grid_ids(old)) {
    old_ids.insert(id);
    if (!new_ids.count(id)) ++removed;
  }
  for (const std::uint64_t id : new_ids)
    if (!old_ids.count(id)) ++added;
  std::string grid_diff;
  for (const auto& [k, unused] : keys) {
    if (!is_grid_key(k)) continue;
    const auto a = old.canonical.count(k) ? old.canonical.at(k) : "(unset)";
    const auto b = job.canonical.count(k) ? job.canonical.at(k) : "(unset)";
    if (a != b) grid_diff += "\n  " + k + ": stored " + a + ", now " + b;
  }
  if (removed > 0)
    return "the job removes " + std::to_string(removed) + " grid points of the stored sweep:" + grid_diff +
           "\n  (use a new output file for a different grid)";
  if (added > 0) {
    if (needs_extend) *needs_extend = true;
    if (!extend)
      return "the job adds " + std::to_string(added) + " grid points to the stored sweep:" + grid_diff +
             "\n  rerun with --extend to add them";
  }
  return "";
}

}  // namespace hpsweep
