#include "hpsweep/planner/plan_study.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <unordered_map>

#include "hpsweep/backends/backend.hpp"
#include "hpsweep/backends/surrogate.hpp"
#include "hpsweep/store/stored_job.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double rel_error(double estimate, double reference) {
  return reference > 0 && estimate > 0 ? std::fabs(estimate / reference - 1) : kNaN;
}

// Every trial run at most once, in virtual time: the backend answers at once (surrogate,
// lookup), so a study of many budgets costs one pass over the grid.
class Oracle {
 public:
  Oracle(const JobSpec& job, const std::vector<Trial>& grid) : grid_(grid), backend_(make_backend(job)) {}
  const TrialRecord& run(std::size_t grid_index) {
    const Trial& t = grid_[grid_index];
    auto it = cache_.find(t.id);
    if (it != cache_.end()) return it->second;
    TrialRecord r;
    r.trial = t;
    try {
      r.outcome = backend_->run(t);
    } catch (const std::exception& e) {
      r.outcome.state = TrialState::Failed;
      r.outcome.error = e.what();
    }
    return cache_.emplace(t.id, std::move(r)).first->second;
  }

 private:
  const std::vector<Trial>& grid_;
  std::unique_ptr<Backend> backend_;
  std::unordered_map<TrialId, TrialRecord> cache_;
};

void set_errors(PlanStudyRow& row, const PlanStudy& s) {
  if (!row.estimate.ok) {
    row.lr_error = row.batch_error = row.lr_truth_error = row.batch_truth_error = kNaN;
    return;
  }
  row.lr_error = s.full.ok ? rel_error(row.estimate.lr.estimate, s.full.lr.estimate) : kNaN;
  row.batch_error = s.full.ok ? rel_error(row.estimate.batch_tokens.estimate, s.full.batch_tokens.estimate) : kNaN;
  row.lr_truth_error = s.truth_lr ? rel_error(row.estimate.lr.estimate, *s.truth_lr) : kNaN;
  row.batch_truth_error = s.truth_batch ? rel_error(row.estimate.batch_tokens.estimate, *s.truth_batch) : kNaN;
}

std::string percent(double v, int digits = 1) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f%%", digits, 100 * v);
  return buf;
}

std::string interval_text(const Interval& i) {
  return format_short(i.estimate) + " [" + format_short(i.lo) + ", " + format_short(i.hi) + "]";
}

// What every study states about its job and grid.
PlanStudy study_of(const JobSpec& job, const std::vector<Trial>& grid) {
  PlanStudy s;
  s.job_name = job.name;
  s.backend = job.backend_kind;
  s.target_params = job.target_params;
  s.target_tokens = job.target_tokens;
  s.grid_trials = grid.size();
  return s;
}

}  // namespace

PlanStudy run_plan_study(const JobSpec& job, const std::vector<double>& budgets_in) {
  const std::vector<Trial> grid = expand_grid(job);
  PlanStudy s = study_of(job, grid);
  Oracle oracle(job, grid);
  Planner reference(job, grid);  // holds every result, for the fits of fixed trial sets
  s.grid_compute = reference.grid_compute();
  s.job_budget = reference.budget() / s.grid_compute;

  if (job.backend_kind == "surrogate") {
    const SurrogateParams p = SurrogateParams::from_options(job.backend_options);
    s.truth_lr = p.optimal_lr(job.target_params, job.target_tokens);
    s.truth_batch = p.optimal_batch_tokens(job.target_tokens);
  }
  std::vector<TrialId> all;
  for (std::size_t i = 0; i < grid.size(); ++i) {
    reference.add_result(oracle.run(i));
    all.push_back(grid[i].id);
  }
  s.full = reference.estimate(all);
  PlanStudyRow full_row;
  full_row.strategy = "full grid";
  full_row.budget = 1;
  full_row.compute_fraction = 1;
  full_row.trials = grid.size();
  full_row.estimate = s.full;

  std::vector<double> budgets = budgets_in;
  if (budgets.empty()) budgets.push_back(s.job_budget);
  for (double budget : budgets) {
    JobSpec jb = job;
    jb.adaptive.budget_fraction = budget;
    jb.adaptive.budget_flops = 0;
    Planner planner(jb, grid);
    // Rounds complete in order, each as soon as the previous one did: the order of `hpsweep run`
    // with its rounds pipelined, without the waiting.
    for (;;) {
      planner.advance();
      const PlanRound* open = nullptr;
      for (const auto& r : planner.rounds()) {
        for (const auto& t : r.trials)
          if (!planner.has_result(t.id)) open = &r;
        if (open) break;
      }
      if (!open) break;
      for (const auto& t : open->trials) planner.add_result(oracle.run(t.grid_index));
    }
    PlanStudyRow row;
    row.strategy = "adaptive";
    row.budget = budget;
    std::vector<TrialId> ids;
    for (const auto& t : planner.planned()) ids.push_back(t.id);
    row.trials = ids.size();
    row.rounds = planner.rounds().size();
    row.compute_fraction = planner.planned_compute() / s.grid_compute;
    row.estimate = planner.estimate(ids);
    set_errors(row, s);
    s.rows.push_back(row);
    if (std::fabs(budget - s.job_budget) < 1e-12 || budgets.size() == 1) s.rounds = planner.rounds();

    // A uniform random subset of the grid with the same compute (seeded: [adaptive] seed).
    std::vector<std::size_t> order(grid.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::mt19937_64 rng(jb.adaptive.seed * 1000003ULL + static_cast<std::uint64_t>(std::llround(budget * 1e6)));
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
    PlanStudyRow random_row;
    random_row.strategy = "uniform random";
    random_row.budget = budget;
    std::vector<TrialId> random_ids;
    double compute = 0;
    for (std::size_t i : order) {
      const double c = grid[i].point.compute();
      if (compute + c > planner.planned_compute() * (1 + 1e-12)) continue;
      compute += c;
      random_ids.push_back(grid[i].id);
    }
    random_row.trials = random_ids.size();
    random_row.compute_fraction = compute / s.grid_compute;
    random_row.estimate = reference.estimate(random_ids);
    set_errors(random_row, s);
    s.rows.push_back(random_row);
  }
  set_errors(full_row, s);
  s.rows.push_back(full_row);
  return s;
}

std::string format_plan_study(const PlanStudy& s, bool list_rounds) {
  std::string out;
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "plan of '%s' (backend %s) in virtual time: %zu grid trials, %s FLOPs; target N = %s, D = %s\n",
                s.job_name.c_str(), s.backend.c_str(), s.grid_trials, format_short(s.grid_compute).c_str(),
                format_short(s.target_params).c_str(), format_short(s.target_tokens).c_str());
  out += buf;
  out += "full grid's default fit at the target: ";
  out += s.full.ok ? "lr " + interval_text(s.full.lr) + ", B " + interval_text(s.full.batch_tokens) + " tokens\n"
                   : "none (" + s.full.note + ")\n";
  if (s.truth_lr)
    out += "surrogate's truth at the target: lr " + format_short(*s.truth_lr) + ", B " + format_short(*s.truth_batch) +
           " tokens\n";
  out +=
      "\nlr and B: 95% prediction interval at the target, its width (hi - lo) / estimate, and the error of the "
      "estimate against the full grid's fit" +
      std::string(s.truth_lr ? " and against the truth" : "") + "\n\n";
  out +=
      "| strategy | budget | compute | trials | rounds | lr at target | lr width | lr error | B at target (tokens) | "
      "B width | B error |";
  out += s.truth_lr ? " lr error (truth) | B error (truth) |\n" : "\n";
  out += "|---|---:|---:|---:|---:|---|---:|---:|---|---:|---:|";
  out += s.truth_lr ? "---:|---:|\n" : "\n";
  for (const auto& r : s.rows) {
    std::snprintf(buf, sizeof buf, "| %s | %s | %s | %zu | %s | %s | %s | %s | %s | %s | %s |", r.strategy.c_str(),
                  percent(r.budget, 0).c_str(), percent(r.compute_fraction).c_str(), r.trials,
                  r.strategy == "adaptive" ? std::to_string(r.rounds).c_str() : "",
                  r.estimate.ok ? interval_text(r.estimate.lr).c_str() : ("no fit: " + r.estimate.note).c_str(),
                  percent(r.estimate.lr_rel_width(), 0).c_str(), percent(r.lr_error).c_str(),
                  r.estimate.ok ? interval_text(r.estimate.batch_tokens).c_str() : "-",
                  percent(r.estimate.batch_rel_width(), 0).c_str(), percent(r.batch_error).c_str());
    out += buf;
    if (s.truth_lr) out += " " + percent(r.lr_truth_error) + " | " + percent(r.batch_truth_error) + " |";
    out += "\n";
  }
  if (list_rounds && !s.rounds.empty()) {
    out += "\nrounds of the plan at budget " + percent(s.job_budget, 0) +
           " (round k is decided from the results of rounds 0..k-2):\n";
    out += "| round | trials | planned compute | results seen | lr at target (seen) | B at target (seen) |\n";
    out += "|---:|---:|---:|---:|---|---|\n";
    for (const auto& r : s.rounds) {
      std::snprintf(buf, sizeof buf, "| %d | %zu | %s | %zu | %s | %s |\n", r.index, r.trials.size(),
                    percent(r.planned_compute / s.grid_compute).c_str(), r.estimate.results,
                    r.estimate.ok ? interval_text(r.estimate.lr).c_str() : "-",
                    r.estimate.ok ? interval_text(r.estimate.batch_tokens).c_str() : "-");
      out += buf;
    }
  }
  return out;
}

PlanStudy stored_plan_study(const SweepLog& log, const std::string& sweep_path) {
  const JobSpec job = required_stored_job(log, sweep_path);
  if (!job.adaptive.enabled)
    throw InputError(sweep_path + ": not an adaptive sweep (its job has no [adaptive] section)");
  const std::vector<Trial> grid = expand_grid(job);
  PlanStudy s = study_of(job, grid);
  s.stored = true;
  Planner planner(job, grid);
  for (const auto& [id, record] : log.latest_by_id()) planner.add_result(*record);
  planner.advance();
  s.grid_compute = planner.grid_compute();
  s.job_budget = planner.budget() / s.grid_compute;
  s.rounds = planner.rounds();
  if (job.backend_kind == "surrogate") {
    const SurrogateParams p = SurrogateParams::from_options(job.backend_options);
    s.truth_lr = p.optimal_lr(job.target_params, job.target_tokens);
    s.truth_batch = p.optimal_batch_tokens(job.target_tokens);
  }
  PlanStudyRow row;
  row.strategy = "adaptive";
  row.budget = s.job_budget;
  std::vector<TrialId> ids;
  for (const auto& t : planner.planned())
    if (planner.has_result(t.id)) ids.push_back(t.id);
  row.trials = ids.size();
  row.rounds = planner.rounds().size();
  row.estimate = planner.estimate(ids);
  row.compute_fraction = row.estimate.compute / s.grid_compute;
  s.rows.push_back(row);
  return s;
}

std::string format_stored_plan(const SweepLog& log, const std::string& sweep_path) {
  const JobSpec job = required_stored_job(log, sweep_path);
  if (!job.adaptive.enabled) return sweep_path + ": not an adaptive sweep (its job has no [adaptive] section)\n";
  Planner planner(job, expand_grid(job));
  for (const auto& [id, record] : log.latest_by_id()) planner.add_result(*record);
  planner.advance();
  std::string out;
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "adaptive plan of %s: %zu rounds, %zu trials, %s of the grid's compute (budget %s)%s%s\n",
                sweep_path.c_str(), planner.rounds().size(), planner.planned().size(),
                percent(planner.planned_compute() / planner.grid_compute()).c_str(),
                percent(planner.budget() / planner.grid_compute()).c_str(), planner.finished() ? "; finished: " : "",
                planner.finish_reason().c_str());
  out += buf;
  const auto latest = log.latest_by_id();
  for (const auto& r : planner.rounds()) {
    std::snprintf(buf, sizeof buf, "\nround %d: %zu trials, planned compute %s", r.index, r.trials.size(),
                  percent(r.planned_compute / planner.grid_compute()).c_str());
    out += buf;
    if (r.estimate.ok)
      out += "; decided on " + std::to_string(r.estimate.results) + " results: lr " + interval_text(r.estimate.lr) +
             ", B " + interval_text(r.estimate.batch_tokens);
    out += "\n";
    for (const auto& t : r.trials) {
      const TrialPoint& p = planner.grid()[t.grid_index].point;
      const auto it = latest.find(t.id);
      const std::string state = it == latest.end() ? "PENDING" : to_string(it->second->outcome.state);
      std::snprintf(buf, sizeof buf, "  %s N=%s D=%s lr=%s batch=%lld  %-11s %s\n", hex64(t.id).c_str(),
                    format_short(p.params).c_str(), format_short(p.tokens).c_str(), format_short(p.lr).c_str(),
                    static_cast<long long>(p.batch), state.c_str(), t.why.c_str());
      out += buf;
    }
  }
  return out;
}

namespace {

// One gnuplot data block: "# [NAME] columns", then rows (report.hpp: blocks 2 blank lines apart).
struct FigureData {
  std::string text;
  std::vector<std::string> names;  // blocks with rows
  void block(const std::string& name, const std::vector<std::array<double, 4>>& rows) {
    if (rows.empty()) return;
    if (!text.empty()) text += "\n\n";
    text += "# [" + name + "] compute_fraction estimate lo hi\n";
    for (const auto& r : rows) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "%.17g %.17g %.17g %.17g\n", r[0], r[1], r[2], r[3]);
      text += buf;
    }
    names.push_back(name);
  }
  bool has(const std::string& name) const { return std::find(names.begin(), names.end(), name) != names.end(); }
};

ReportFigure interval_figure(const PlanStudy& s, bool lr) {
  auto pick = [lr](const PlanEstimate& e) { return lr ? e.lr : e.batch_tokens; };
  auto row = [&](double x, const PlanEstimate& e) {
    const Interval i = pick(e);
    return std::array<double, 4>{x, i.estimate, i.lo, i.hi};
  };
  FigureData d;
  std::vector<std::array<double, 4>> rounds, adaptive, random, full, truth;
  double x_min = 1;
  for (const auto& r : s.rounds)
    if (r.estimate.ok && r.estimate.compute > 0) {
      rounds.push_back(row(r.estimate.compute / s.grid_compute, r.estimate));
      x_min = std::min(x_min, rounds.back()[0]);
    }
  for (const auto& r : s.rows) {
    if (!r.estimate.ok || r.strategy == "full grid") continue;
    (r.strategy == "adaptive" ? adaptive : random).push_back(row(r.compute_fraction, r.estimate));
    x_min = std::min(x_min, r.compute_fraction);
  }
  if (s.full.ok) {
    full.push_back(row(x_min / 1.5, s.full));
    full.push_back(row(1.5, s.full));
  }
  const std::optional<double> t = lr ? s.truth_lr : s.truth_batch;
  if (t) truth = {{x_min / 1.5, *t, *t, *t}, {1.5, *t, *t, *t}};
  d.block("full", full);
  d.block("truth", truth);
  d.block("rounds", rounds);
  d.block("adaptive", adaptive);
  d.block("random", random);

  ReportFigure f;
  f.name = lr ? "plan_lr" : "plan_batch";
  f.title = std::string(lr ? "Peak learning rate" : "Batch size") + " at the target against the compute spent";
  f.caption = "The 95% prediction interval of the optimal " + std::string(lr ? "learning rate" : "batch size") +
              " at N = " + format_short(s.target_params) + ", D = " + format_short(s.target_tokens) +
              ", against the compute spent (a fraction of the full grid's, " + format_short(s.grid_compute) +
              " FLOPs). Rounds: each round of the plan at the job's budget (" + percent(s.job_budget, 0) +
              "), placed at the compute of the results its decision saw.";
  if (!adaptive.empty())
    f.caption += random.empty() ? " Adaptive: the fit on every result of the plan."
                                : " Adaptive and uniform random: the final fit at each budget studied (random "
                                  "slightly to the right).";
  if (!full.empty()) f.caption += " Grey: the full grid's interval.";
  if (t) f.caption += " Dashed: the surrogate's truth.";
  f.data = d.text;
  auto src = [](const std::string& name) { return "DATA_FILE index \"[" + name + "]\""; };
  std::vector<std::string> plot;
  if (d.has("full")) {
    plot.push_back(src("full") + " using 1:3:4 with filledcurves lc rgb \"#dddddd\" title \"full grid (95% PI)\"");
    plot.push_back(src("full") + " using 1:2 with lines lc rgb \"#000000\" title \"full grid\"");
  }
  if (d.has("truth")) plot.push_back(src("truth") + " using 1:2 with lines dt 2 lc rgb \"#d55e00\" title \"truth\"");
  if (d.has("rounds"))
    plot.push_back(src("rounds") +
                   " using 1:2:3:4 with yerrorlines pt 7 ps 0.7*PS lc rgb \"#0072b2\" title \"rounds (job's budget)\"");
  if (d.has("adaptive"))
    plot.push_back(src("adaptive") +
                   " using 1:2:3:4 with yerrorbars pt 5 ps 1.2*PS lc rgb \"#e69f00\" title \"adaptive\"");
  if (d.has("random"))
    plot.push_back(src("random") +
                   " using ($1*1.08):2:3:4 with yerrorbars pt 6 ps 1.2*PS lc rgb \"#009e73\" title \"uniform random\"");
  char range[96];
  std::snprintf(range, sizeof range, "set xrange [%.6g:1.5]\n", x_min / 1.5);
  std::string cmd = "set logscale xy\nset grid\nset key top right font \",11\"\nset format xy \"%g\"\n";
  cmd += range;
  cmd += "set xlabel \"compute spent (fraction of the full grid's)\"\n";
  cmd += std::string("set ylabel \"") + (lr ? "optimal peak learning rate η*" : "optimal batch size B* (tokens)") +
         " at the target\"\n";
  for (std::size_t i = 0; i < plot.size(); ++i) cmd += (i == 0 ? "plot " : ", \\\n     ") + plot[i];
  f.plot = cmd + "\n";
  f.width = 720;
  f.height = 480;
  return f;
}

}  // namespace

ReportSection plan_report_section(const PlanStudy& s, const std::string& listing) {
  ReportSection sec;
  sec.id = "plan";
  sec.title = "Adaptive plan of '" + s.job_name + "'" + (s.stored ? "" : " in virtual time (" + s.backend + ")");
  sec.html = "<pre>" + html_escape(listing) + "</pre>";
  sec.figures = {interval_figure(s, true), interval_figure(s, false)};
  return sec;
}

}  // namespace hpsweep
