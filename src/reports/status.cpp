#include "hpsweep/reports/status.hpp"

#include <tuple>

#include <cmath>
#include <cstdio>
#include <optional>
#include <unordered_map>

#include "hpsweep/store/stored_job.hpp"
#include "hpsweep/util/json.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

SweepStatus summarize(const SweepLog& log) {
  SweepStatus s;
  std::vector<Trial> grid;
  const std::optional<JobSpec> job = stored_job(log);
  if (!job) {  // ingested results only: the "grid" is what was imported
    s.name = "(ingested results)";
    std::unordered_map<TrialId, bool> seen;
    for (const auto& r : log.results)
      if (seen.emplace(r.trial.id, true).second) grid.push_back(r.trial);
  } else {
    grid = expand_grid(*job);
    s.name = job->name;
  }
  s.grid_size = grid.size();
  s.records = log.results.size();
  s.launches = log.launches;
  s.warnings = log.warnings;
  s.live = !log.launches.empty() && log.launches.back().ended == "running";
  const auto latest = log.latest_by_id();

  std::map<std::tuple<std::string, double, double>, CellStatus> cells;
  for (const auto& t : grid) {
    CellStatus& c = cells[{t.point.variant, t.point.params, t.point.tokens}];
    c.variant = t.point.variant;
    c.params = t.point.params;
    c.tokens = t.point.tokens;
    ++c.trials;
    TrialState state = TrialState::Pending;
    if (auto it = latest.find(t.id); it != latest.end()) {
      const TrialRecord& r = *it->second;
      state = r.outcome.state;
      if (is_terminal(state)) ++c.finished;
      if (state == TrialState::Diverged) ++c.diverged;
      if (state == TrialState::Failed || state == TrialState::Timeout) ++c.failed;
      const double loss = r.outcome.smooth_loss;
      if (state == TrialState::Done && std::isfinite(loss) && (!c.has_best || loss < c.best_loss)) {
        c.has_best = true;
        c.best_loss = loss;
        c.best = r.trial.point;
        c.best_id = r.trial.id;
      }
    }
    if (!is_terminal(state) && log.in_flight.count(t.id)) state = s.live ? TrialState::Running : TrialState::Lost;
    ++s.by_state[state];
  }
  for (auto& [k, c] : cells) s.cells.push_back(c);
  return s;
}

std::string format_status(const SweepStatus& s, std::size_t max_launches, std::size_t max_cells) {
  std::string out;
  char buf[512];
  std::size_t finished = 0;
  for (auto st :
       {TrialState::Done, TrialState::Diverged, TrialState::Failed, TrialState::Timeout, TrialState::Unavailable})
    finished += s.by_state.count(st) ? s.by_state.at(st) : 0;
  std::snprintf(buf, sizeof buf, "sweep '%s': %zu of %zu trials finished (%zu rows recorded)%s\n", s.name.c_str(),
                finished, s.grid_size, s.records, s.live ? "; a launch is running (or was killed)" : "");
  out += buf;
  out += "states:";
  for (int i = 0; i <= static_cast<int>(kLastTrialState); ++i) {
    const auto st = static_cast<TrialState>(i);
    const std::size_t n = s.by_state.count(st) ? s.by_state.at(st) : 0;
    if (n || st == TrialState::Pending || st == TrialState::Done)
      out += std::string("  ") + to_string(st) + " " + std::to_string(n);
  }
  out +=
      "\n\ncells (N x D): trials, finished, diverged, failed, best smoothed loss at (lr, batch seqs, batch tokens, "
      "wd)\n";
  for (std::size_t i = 0; i < s.cells.size(); ++i) {
    const auto& c = s.cells[i];
    if (i == max_cells) {
      out +=
          "  ... " + std::to_string(s.cells.size() - max_cells) + " more cells: hpsweep status FILE shows them all\n";
      break;
    }
    if (!c.variant.empty() && (i == 0 || s.cells[i - 1].variant != c.variant)) out += " variant " + c.variant + "\n";
    std::snprintf(buf, sizeof buf, "  N=%-8s D=%-8s %5zu %5zu %5zu %5zu  ", format_short(c.params).c_str(),
                  format_short(c.tokens).c_str(), c.trials, c.finished, c.diverged, c.failed);
    out += buf;
    if (c.has_best) {
      std::snprintf(buf, sizeof buf, "%.5f at lr=%s bs=%lld (%s tok) wd=%s\n", c.best_loss,
                    format_short(c.best.lr).c_str(), static_cast<long long>(c.best.batch),
                    format_short(c.best.batch_tokens()).c_str(), format_short(c.best.wd).c_str());
      out += buf;
    } else {
      out += "-\n";
    }
  }
  out += "\nlaunches (most recent last):\n";
  const std::size_t first = s.launches.size() > max_launches ? s.launches.size() - max_launches : 0;
  for (std::size_t i = first; i < s.launches.size(); ++i) {
    const auto& l = s.launches[i];
    std::snprintf(buf, sizeof buf, "  #%d  %s  %d ranks  %lld trials  %s%s%s\n", l.index,
                  iso8601_utc(l.start_time).c_str(), l.ranks, static_cast<long long>(l.trials_recorded),
                  l.ended.c_str(), l.slurm_job_id.empty() ? "" : ("  slurm job " + l.slurm_job_id).c_str(),
                  l.end_time > 0 ? ("  ended " + iso8601_utc(l.end_time)).c_str() : "");
    out += buf;
  }
  for (const auto& w : s.warnings) out += "\nwarning: " + w + "\n";
  return out;
}

std::string status_json(const SweepStatus& s) {
  JsonWriter j;
  j.begin_object();
  j.key("name").value(s.name);
  j.key("grid_size").value(s.grid_size);
  j.key("records").value(s.records);
  j.key("live").value(s.live);
  j.key("warnings").begin_array();
  for (const auto& w : s.warnings) j.value(w);
  j.end_array();
  j.key("states").begin_object();
  for (int i = 0; i <= static_cast<int>(kLastTrialState); ++i) {
    const auto st = static_cast<TrialState>(i);
    j.key(to_string(st)).value(s.by_state.count(st) ? s.by_state.at(st) : std::size_t{0});
  }
  j.end_object();
  j.key("cells").begin_array();
  for (const auto& c : s.cells) {
    j.begin_object();
    j.key("variant").value(c.variant).key("params").value(c.params).key("tokens").value(c.tokens);
    j.key("trials").value(c.trials).key("finished").value(c.finished);
    j.key("diverged").value(c.diverged).key("failed").value(c.failed);
    if (c.has_best) {
      j.key("best").begin_object();
      j.key("id").value(hex64(c.best_id)).key("smooth_loss").value(c.best_loss);
      j.key("lr").value(c.best.lr).key("batch").value(static_cast<long long>(c.best.batch));
      j.key("batch_tokens").value(c.best.batch_tokens()).key("wd").value(c.best.wd);
      j.end_object();
    }
    j.end_object();
  }
  j.end_array();
  j.key("launches").begin_array();
  for (const auto& l : s.launches) {
    j.begin_object();
    j.key("index").value(l.index).key("start").value(iso8601_utc(l.start_time));
    j.key("end").value(iso8601_utc(l.end_time)).key("ranks").value(l.ranks).key("hosts").value(l.hosts);
    j.key("slurm_job_id").value(l.slurm_job_id).key("slurm_restart_count").value(l.slurm_restart_count);
    j.key("trials_recorded").value(static_cast<long long>(l.trials_recorded)).key("ended").value(l.ended);
    j.end_object();
  }
  j.end_array();
  j.end_object();
  return j.str() + "\n";
}

}  // namespace hpsweep
