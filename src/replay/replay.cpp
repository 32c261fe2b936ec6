#include "hpsweep/replay/replay.hpp"
#include "hpsweep/reports/fit_text.hpp"
#include "hpsweep/store/stored_job.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <tuple>
#include <unordered_map>

#include "hpsweep/scheduler/master.hpp"
#include "hpsweep/scheduler/simulated_comm.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/transfer/coordcheck.hpp"
#include "hpsweep/transfer/transfer_fit.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {
SweepLog prefix(const SweepLog& log, std::size_t n) {
  SweepLog p;
  p.job_text = log.job_text;
  p.job_path = log.job_path;
  for (std::size_t i = 0; i < std::min(n, log.results.size()); ++i) p.add_result(log.results[i]);
  return p;
}
}  // namespace

std::vector<RefitCheck> refit_stored(const SweepLog& log) {
  std::vector<RefitCheck> out;
  for (const auto& stored : log.fits) {
    RefitCheck c;
    c.name = stored.name;
    const std::size_t n = stored.results ? stored.results : log.results.size();
    FitRecord again;
    if (stored.kind == ResultKind::CoordCheck) {
      // Deterministic training: the same binary on the same CPU reproduces every slope.
      const JobSpec job = required_stored_job(log);
      again = to_fit_record(coord_check(job, CoordCheckOptions::parse(stored.options)), stored.name);
    } else {
      const FitOptions o = FitOptions::parse(stored.options);
      const SweepLog part = prefix(log, n);
      again = o.transfer ? to_fit_record(fit_transfer(part, o), stored.name, n)
                         : to_fit_record(fit_sweep(part, o), stored.name, n);
    }
    c.coefficients = stored.coefficients.size();
    std::map<std::string, const FitCoefficient*> now;
    for (const auto& k : again.coefficients) now[k.law + "." + k.name] = &k;
    for (const auto& s : stored.coefficients) {
      auto it = now.find(s.law + "." + s.name);
      const double a[5] = {s.estimate, s.mean, s.median, s.lo, s.hi};
      bool same = it != now.end();
      double diff = 0;
      if (same) {
        const FitCoefficient& k = *it->second;
        const double b[5] = {k.estimate, k.mean, k.median, k.lo, k.hi};
        for (int i = 0; i < 5; ++i) {
          const bool both_nan = std::isnan(a[i]) && std::isnan(b[i]);
          if (!both_nan && a[i] != b[i]) same = false, diff = std::max(diff, std::fabs(a[i] - b[i]));
        }
      }
      if (!same) {
        ++c.differing;
        c.max_abs_difference = std::max(c.max_abs_difference, diff);
        if (c.first_difference.empty())
          c.first_difference = s.law + "." + s.name + ": stored " + format_double(s.estimate) + ", now " +
                               (it == now.end() ? std::string("missing") : format_double(it->second->estimate));
      }
    }
    if (again.coefficients.size() != stored.coefficients.size() && c.first_difference.empty())
      c.first_difference = "now " + std::to_string(again.coefficients.size()) + " coefficients, stored " +
                           std::to_string(stored.coefficients.size());
    c.identical = c.differing == 0 && again.coefficients.size() == stored.coefficients.size() &&
                  again.points.size() == stored.points.size();
    out.push_back(c);
  }
  return out;
}

Timeline replay_timeline(const SweepLog& log, const FitOptions& options, int steps) {
  Timeline t;
  FitOptions o = options;
  // Final per-cell argmin, to see when each cell's optimum settled.
  std::map<std::tuple<std::string, double, double>, TrialId> final_best;
  for (const auto& c : collect_cells(log)) final_best[{c.variant, c.params, c.tokens}] = c.best().id;
  for (int s = 1; s <= steps; ++s) {
    TimelinePoint p;
    p.fraction = static_cast<double>(s) / steps;
    p.trials = static_cast<std::size_t>(std::llround(p.fraction * static_cast<double>(log.results.size())));
    const SweepLog part = prefix(log, p.trials);
    const auto cells = collect_cells(part);
    p.cells = cells.size();
    for (const auto& c : cells) {
      auto it = final_best.find({c.variant, c.params, c.tokens});
      if (it != final_best.end() && c.points.size() >= 3 && c.best().id == it->second) ++p.cells_at_final_optimum;
    }
    try {
      const FitReport r = fit_sweep(part, o);
      p.fitted = true;
      const auto coef = [](const std::optional<PowerLaw>& law, const std::string& name) {
        for (std::size_t k = 0; k < law->coef_names.size(); ++k)
          if (law->coef_names[k] == name) return law->coefs[k].estimate;
        return std::nan("");
      };
      p.lr_n_exp = coef(r.lr_law, "lr_n_exp");
      p.lr_d_exp = coef(r.lr_law, "lr_d_exp");
      p.batch_d_exp = coef(r.batch_law, "batch_d_exp");
      if (r.prediction) {
        t.has_target = true;
        p.lr = r.prediction->lr;
        p.batch_tokens = r.prediction->batch_tokens;
      }
    } catch (const Error& e) {
      p.fitted = false;  // usually too few cells so far
      p.why_not = e.what();
    }
    t.points.push_back(p);
  }
  if (t.has_target && !t.points.empty() && t.points.back().fitted) {
    const TimelinePoint& last = t.points.back();
    for (std::size_t i = t.points.size(); i-- > 0;) {
      const TimelinePoint& p = t.points[i];
      const bool inside = p.fitted && p.lr.estimate >= last.lr.lo && p.lr.estimate <= last.lr.hi &&
                          p.batch_tokens.estimate >= last.batch_tokens.lo &&
                          p.batch_tokens.estimate <= last.batch_tokens.hi;
      if (!inside) break;
      t.stop_fraction = p.fraction;
    }
  }
  return t;
}

std::vector<WhatIfRow> what_if(const SweepLog& log, const std::vector<int>& ranks, int prefetch, int gpus_per_node) {
  // One duration per trial: its latest terminal attempt, most expensive first as the master orders them.
  std::unordered_map<TrialId, double> duration;
  std::vector<Trial> trials;
  for (const auto& [id, r] : log.latest_by_id()) {
    if (!is_terminal(r->outcome.state)) continue;
    duration[id] = r->wall_time;
    trials.push_back(r->trial);
  }
  std::sort(trials.begin(), trials.end(), [](const Trial& a, const Trial& b) {
    const double ca = a.point.compute(), cb = b.point.compute();
    return ca != cb ? ca > cb : a.id < b.id;
  });
  double total = 0;
  for (const auto& t : trials) total += duration[t.id];
  // Packed: each trial's GPUs from the stored job's [resources] (a job without them asks for none).
  std::function<TaskDemand(const Trial&)> demand;
  std::unordered_map<TrialId, double> gpus;
  double device_total = 0, longest = 0;
  std::optional<JobSpec> job;
  if (gpus_per_node > 0) {
    job = parse_job(log.job_text, kStoredJobName);
    if (!job->resources.given())
      throw InputError("the stored job has no [resources]: there is nothing to pack onto GPUs (drop --gpus-per-node)");
    demand = [&job](const Trial& t) {
      const TrialResources r = job->resources_for(t.point.params, t.point.tokens);
      return TaskDemand{r.gpus, r.cpus, r.nodes};
    };
    for (const auto& t : trials) {
      gpus[t.id] = demand(t).gpus;
      device_total += gpus[t.id] * duration[t.id];
      longest = std::max(longest, duration[t.id]);
    }
  }

  struct NullSink : ResultSink {
    void on_dispatch(const Trial&, int) override {}
    void on_result(TrialRecord) override {}
    void on_idle() override {}
  };
  std::vector<WhatIfRow> rows;
  for (int r : ranks) {
    if (r < 2) continue;
    WhatIfRow row;
    row.ranks = r;
    row.workers = r - 1;
    protocol::WorkerSlots slots;
    for (int g = 0; g < gpus_per_node; ++g) slots.devices.push_back(std::to_string(g));
    slots.cpus = 1 << 20;  // cores are not what a GPU sweep waits for
    SimulatedWorkers sim(
        r, [&](const Trial& t) { return duration.at(t.id); }, slots);
    const auto workers = start_workers(sim, "", "", "", [](const std::string&) {});
    NullSink sink;
    MasterOptions mo;
    mo.prefetch = prefetch;
    run_master(sim, workers, trials, sink, mo, demand);
    row.dynamic_makespan = sim.now();
    std::vector<double> load(static_cast<std::size_t>(row.workers), 0.0);
    for (std::size_t i = 0; i < trials.size(); ++i) load[i % load.size()] += duration[trials[i].id];
    row.static_makespan = *std::max_element(load.begin(), load.end());
    if (gpus_per_node > 0) {
      const double devices = static_cast<double>(row.workers) * gpus_per_node;
      row.gpus_per_node = gpus_per_node;
      row.ideal = std::max(device_total / devices, longest);
      row.dynamic_utilisation = row.dynamic_makespan > 0 ? device_total / (row.dynamic_makespan * devices) : 1;
      row.static_utilisation = row.static_makespan > 0 ? device_total / (row.static_makespan * devices) : 1;
      rows.push_back(row);
      continue;
    }
    row.ideal = total / row.workers;
    row.dynamic_utilisation = row.dynamic_makespan > 0 ? total / (row.dynamic_makespan * row.workers) : 1;
    row.static_utilisation = row.static_makespan > 0 ? total / (row.static_makespan * row.workers) : 1;
    rows.push_back(row);
  }
  return rows;
}

std::string format_refit(const std::vector<RefitCheck>& checks) {
  if (checks.empty()) return "re-fit: no stored fits (run hpsweep fit FILE to store one)\n";
  std::string out = "re-fit of stored fits from the stored trials and options:\n";
  for (const auto& c : checks) {
    if (c.identical)
      out += "  " + c.name + ": identical, bit for bit (" + std::to_string(c.coefficients) + " coefficients)\n";
    else
      out += "  " + c.name + ": DIFFERS in " + std::to_string(c.differing) + " of " + std::to_string(c.coefficients) +
             " coefficients (max abs difference " + format_short(c.max_abs_difference) +
             "); first: " + c.first_difference + "\n";
  }
  return out;
}

std::string format_timeline(const Timeline& t) {
  std::string out = "timeline (trials in recorded order; fits with the given selection):\n";
  char buf[256];
  std::snprintf(buf, sizeof buf, "  %6s %7s %5s %9s %10s %10s %11s%s\n", "trials", "", "cells", "settled", "lr_n_exp",
                "lr_d_exp", "batch_d_exp", t.has_target ? "   predicted lr [95%]            predicted B tokens" : "");
  out += buf;
  for (const auto& p : t.points) {
    std::snprintf(buf, sizeof buf, "  %6zu %6.0f%% %5zu %9zu ", p.trials, 100 * p.fraction, p.cells,
                  p.cells_at_final_optimum);
    out += buf;
    if (!p.fitted) {
      out += "  (no fit: " + (p.why_not.size() > 90 ? p.why_not.substr(0, 87) + "..." : p.why_not) + ")\n";
      continue;
    }
    std::snprintf(buf, sizeof buf, "%10.4f %10.4f %11.4f", p.lr_n_exp, p.lr_d_exp, p.batch_d_exp);
    out += buf;
    if (t.has_target) {
      std::snprintf(buf, sizeof buf, "   %-9s [%s, %s]   %s", format_short(p.lr.estimate).c_str(),
                    format_short(p.lr.lo).c_str(), format_short(p.lr.hi).c_str(),
                    format_short(p.batch_tokens.estimate).c_str());
      out += buf;
    }
    out += "\n";
  }
  out += "  settled = cells whose best trial so far is already their final best\n";
  if (t.stop_fraction > 0)
    out += "  the predicted lr and B stayed inside the final 95% intervals from " +
           format_short(100 * t.stop_fraction) + "% of the trials on: the sweep could have stopped there\n";
  return out;
}

double recorded_makespan(const SweepLog& log) {
  if (log.launches.empty()) return 0;
  double first = 0, last = 0;
  for (const auto& r : log.results)
    if (r.launch == log.launches.back().index && r.wall_time > 0 && r.rank >= 0) {
      first = first == 0 ? r.start_time : std::min(first, r.start_time);
      last = std::max(last, r.start_time + r.wall_time);
    }
  return last - first;
}

std::string format_what_if(const std::vector<WhatIfRow>& rows, double recorded_makespan) {
  const int gpus = rows.empty() ? 0 : rows.front().gpus_per_node;
  std::string out = "what-if scheduling (recorded trial durations; the real master loop on simulated workers):\n";
  if (gpus > 0)
    out += "  the job's [resources] packed onto nodes of " + std::to_string(gpus) +
           " GPUs (one worker rank per node); util = busy GPU-seconds / all GPU-seconds\n";
  char buf[256];
  std::snprintf(buf, sizeof buf, "  %6s %8s %12s %8s %12s %8s %10s\n", "ranks", gpus > 0 ? "nodes" : "workers",
                "dynamic", "util", "static", "util", "ideal");
  out += buf;
  for (const auto& r : rows) {
    std::snprintf(buf, sizeof buf, "  %6d %8d %12s %7.1f%% %12s %7.1f%% %10s\n", r.ranks, r.workers,
                  format_duration(r.dynamic_makespan).c_str(), 100 * r.dynamic_utilisation,
                  format_duration(r.static_makespan).c_str(), 100 * r.static_utilisation,
                  format_duration(r.ideal).c_str());
    out += buf;
  }
  if (recorded_makespan > 0)
    out += "  recorded: the trials' dispatch span was " + format_duration(recorded_makespan) + "\n";
  out += gpus > 0 ? "  dynamic = hpsweep's packing (largest first, small trials backfilling); static = one trial at a "
                    "time per node, round-robin; ideal = max(GPU-seconds / GPUs, longest trial)\n"
                  : "  dynamic = hpsweep's scheduler (most expensive first, self-scheduling); static = round-robin "
                    "partition\n";
  return out;
}

}  // namespace hpsweep
