#include "hpsweep/planner/planner.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double median_step(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end(), [](double a, double b) { return std::fabs(a - b) < 1e-9; }),
               values.end());
  if (values.size() < 2) return 1.0;
  std::vector<double> steps;
  for (std::size_t i = 1; i < values.size(); ++i) steps.push_back(values[i] - values[i - 1]);
  std::nth_element(steps.begin(), steps.begin() + static_cast<std::ptrdiff_t>(steps.size() / 2), steps.end());
  return std::max(steps[steps.size() / 2], 1e-6);
}

double x_of(const TrialPoint& p) { return std::log(p.lr); }
double y_of(const TrialPoint& p) { return std::log(p.batch_tokens()); }

double rel_width(const Interval& i) { return i.estimate > 0 ? (i.hi - i.lo) / i.estimate : kNaN; }

// The fit the planner decides on: the default (`asym`) per-cell optima and weighted laws; the
// loss law is not needed.
FitOptions planning_fit_options(const JobSpec& job) {
  FitOptions o;
  o.loss_law = false;
  o.bootstrap.resamples = 0;
  o.target_params = job.target_params;
  o.target_tokens = job.target_tokens;
  o.seq_len = job.seq_len;
  return o;
}

// Where a new point of a cell whose optimum has standard error `se2` (ln units squared, from
// `observed` points, `planned` points on their way) reduces the law's prediction variance at
// the target: Sherman-Morrison on the weighted normal matrix, relative to the variance now.
struct LawLeverage {
  Eigen::MatrixXd inverse;  // (X' W X)^-1
  Eigen::VectorXd target;
  double target_var = 0, tau2 = 0;
  const PowerLaw* law = nullptr;

  static std::optional<LawLeverage> of(const PowerLaw* law, const std::vector<CellOptimum>& optima, bool lr,
                                       double target_n, double target_d) {
    if (!law || !law->features) return std::nullopt;
    LawLeverage l;
    l.law = law;
    l.tau2 = std::isfinite(law->scatter_var) ? law->scatter_var : 0.0;
    const double fallback = median_se2(optima, lr);
    Eigen::MatrixXd m;
    for (const auto& o : optima) {
      const Eigen::VectorXd x = law->features(o.params, o.tokens);
      if (m.size() == 0) m = Eigen::MatrixXd::Zero(x.size(), x.size());
      m += x * x.transpose() / (se2(o, lr, fallback) + l.tau2);
    }
    if (m.size() == 0) return std::nullopt;
    Eigen::FullPivLU<Eigen::MatrixXd> lu(m);
    if (!lu.isInvertible()) return std::nullopt;
    l.inverse = lu.inverse();
    l.target = law->features(target_n, target_d);
    l.target_var = l.target.dot(l.inverse * l.target);
    if (!(l.target_var > 0)) return std::nullopt;
    return l;
  }
  static double se2(const CellOptimum& o, bool lr, double fallback) {
    const double s = lr ? o.lr_sd_log : o.batch_sd_log;
    return std::isfinite(s) && s > 0 ? s * s : fallback;
  }
  static double median_se2(const std::vector<CellOptimum>& optima, bool lr) {
    std::vector<double> v;
    for (const auto& o : optima) {
      const double s = lr ? o.lr_sd_log : o.batch_sd_log;
      if (std::isfinite(s) && s > 0) v.push_back(s * s);
    }
    if (v.empty()) return 0.01;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  }
  // Relative reduction of the target variance from one more point in the cell. A cell whose
  // optimum is poorly identified (its bowl failed, or its error is well above the typical cell's)
  // is worth what it gains once identified, spread over the few points that takes; otherwise the
  // error shrinks like 1/points.
  double gain(double n, double d, double se2_now, double typical_se2, double observed, double planned) const {
    constexpr double kPointsToIdentify = 6;
    double dw = 0;
    if (se2_now > 4 * typical_se2) {
      dw = (1.0 / (typical_se2 + tau2) - 1.0 / (se2_now + tau2)) / kPointsToIdentify;
    } else {
      const double s_now = se2_now * observed / planned, s_next = se2_now * observed / (planned + 1);
      dw = 1.0 / (s_next + tau2) - 1.0 / (s_now + tau2);
    }
    const Eigen::VectorXd x = law->features(n, d);
    const double u = target.dot(inverse * x);
    return dw * u * u / (1.0 + dw * x.dot(inverse * x)) / target_var;
  }
};

}  // namespace

double PlanEstimate::lr_rel_width() const { return ok ? rel_width(lr) : kNaN; }
double PlanEstimate::batch_rel_width() const { return ok ? rel_width(batch_tokens) : kNaN; }

Planner::Planner(const JobSpec& job, std::vector<Trial> grid) : job_(job), grid_(std::move(grid)) {
  if (!job_.adaptive.enabled) throw InputError(job_.path + ": the job has no [adaptive] section");
  if (!job_.variants.empty())
    throw InputError(job_.path + ": [adaptive] plans one set of scaling laws; it cannot plan a job with [variants]");
  if (job_.target_params <= 0 || job_.target_tokens <= 0)
    throw InputError(job_.path + ": [adaptive] plans for the target: give [target] params and tokens");
  std::map<std::pair<double, double>, std::size_t> cell_of;
  for (std::size_t i = 0; i < grid_.size(); ++i) {
    const TrialPoint& p = grid_[i].point;
    index_of_[grid_[i].id] = i;
    grid_compute_ += p.compute();
    x_.push_back(x_of(p));
    y_.push_back(y_of(p));
    auto [it, added] = cell_of.emplace(std::make_pair(p.params, p.tokens), cells_.size());
    if (added) cells_.push_back(CellInfo{p.params, p.tokens, {}, 1, 1, 0, 0, 0, 0});
    cells_[it->second].candidates.push_back(i);
  }
  planned_.assign(grid_.size(), 0);
  for (auto& c : cells_) {
    std::vector<double> xs, ys;
    for (std::size_t i : c.candidates) xs.push_back(x_[i]), ys.push_back(y_[i]);
    c.x_step = median_step(xs);
    c.y_step = median_step(ys);
    c.x_lo = *std::min_element(xs.begin(), xs.end());
    c.x_hi = *std::max_element(xs.begin(), xs.end());
    c.y_lo = *std::min_element(ys.begin(), ys.end());
    c.y_hi = *std::max_element(ys.begin(), ys.end());
  }
  // Most expensive cells first: they sit nearest the target.
  std::stable_sort(cells_.begin(), cells_.end(), [](const CellInfo& a, const CellInfo& b) {
    return a.params * a.tokens != b.params * b.tokens ? a.params * a.tokens > b.params * b.tokens : a.params > b.params;
  });
  budget_ = job_.adaptive.budget_flops > 0 ? job_.adaptive.budget_flops : job_.adaptive.budget_fraction * grid_compute_;
}

bool Planner::add_result(const TrialRecord& r) {
  if (!is_terminal(r.outcome.state) || !index_of_.count(r.trial.id)) return false;
  const bool first = !results_.count(r.trial.id);
  results_[r.trial.id] = r;
  if (!first) return false;
  if (auto it = round_of_.find(r.trial.id); it != round_of_.end()) return --missing_[it->second] == 0;
  return false;
}

std::vector<PlannedTrial> Planner::planned() const {
  std::vector<PlannedTrial> out;
  for (const auto& r : rounds_) out.insert(out.end(), r.trials.begin(), r.trials.end());
  return out;
}

PlanEstimate Planner::estimate(const std::vector<TrialId>& ids) const {
  PlanEstimate e;
  SweepLog log;
  for (TrialId id : ids)
    if (auto it = results_.find(id); it != results_.end()) {
      log.results.push_back(it->second);
      e.compute += it->second.trial.point.compute();
    }
  e.results = log.results.size();
  try {
    const FitReport rep = fit_sweep(log, planning_fit_options(job_));
    if (rep.prediction) {
      e.ok = true;
      e.lr = rep.prediction->lr_prediction;
      e.batch_tokens = rep.prediction->batch_prediction;
    } else {
      e.note = "no prediction at the target";
    }
  } catch (const Error& err) {
    e.note = err.what();
  }
  return e;
}

PlanRound Planner::coarse_round(bool cross) const {
  PlanRound round;
  round.index = cross ? 0 : 1;
  const int m = job_.adaptive.coarse_lr, k = job_.adaptive.coarse_batch;
  // Positions (i, j) on a spread lattice over the cell's grid; the cross through the middle first.
  std::vector<std::pair<int, int>> positions;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < k; ++j)
      if ((i == m / 2 || j == k / 2) == cross) positions.emplace_back(i, j);
  std::stable_sort(positions.begin(), positions.end(), [&](auto& a, auto& b) {
    return std::abs(2 * a.first - (m - 1)) + std::abs(2 * a.second - (k - 1)) <
           std::abs(2 * b.first - (m - 1)) + std::abs(2 * b.second - (k - 1));
  });
  std::vector<char> taken = planned_;
  double compute = planned_compute_;
  round.planned_compute = compute;
  for (const auto& [i, j] : positions)
    for (const auto& c : cells_) {
      const double tx = c.x_lo + (i + 0.5) / m * (c.x_hi - c.x_lo);
      const double ty = c.y_lo + (j + 0.5) / k * (c.y_hi - c.y_lo);
      std::optional<std::size_t> best;
      double best_d = 0;
      for (std::size_t g : c.candidates) {
        if (taken[g]) continue;
        const double dx = (x_[g] - tx) / c.x_step, dy = (y_[g] - ty) / c.y_step;
        const double d = dx * dx + dy * dy;
        if (!best || d < best_d) best = g, best_d = d;
      }
      if (!best) continue;
      const double cost = grid_[*best].point.compute();
      if (compute + cost > budget_ * (1 + 1e-12)) {
        round.budget_stop = true;  // a prefix of the larger budgets' round (see PlanRound)
        return round;
      }
      compute += cost;
      round.planned_compute = compute;
      taken[*best] = 1;
      round.trials.push_back(PlannedTrial{*best, grid_[*best].id, "coarse start"});
    }
  return round;
}

Planner::SeenFit Planner::fit_seen(std::string& note) {
  SeenFit fit;
  const std::vector<Cell> cells = collect_cells(seen_);
  const Selection selection = planning_fit_options(job_).selection;
  // The default fit's rule (select_optima: model weights and lr shape shared by the cells), with
  // each cell's own fits cached.
  auto cached_select = [this](const Cell& cell, const Selection& sel, CellOptimum& out, std::string& why) {
    CachedCell& cached = cell_cache_[{cell.params, cell.tokens, sel.borrowed_lr_shape.has_value()}];
    auto same_shape = [](const std::optional<LrShape>& a, const std::optional<LrShape>& b) {
      return a.has_value() == b.has_value() &&
             (!a || (a->upper_ratio == b->upper_ratio && a->upper_cubic == b->upper_cubic));
    };
    const bool same = cached.diverged == cell.diverged && cached.points.size() == cell.points.size() &&
                      same_shape(cached.borrowed, sel.borrowed_lr_shape) &&
                      std::equal(cell.points.begin(), cell.points.end(), cached.points.begin(),
                                 [](const CellPoint& a, const CellPoint& b) {
                                   return a.id == b.id && a.loss == b.loss && a.lr == b.lr &&
                                          a.batch_tokens == b.batch_tokens && a.wd == b.wd && a.batch == b.batch;
                                 });
    if (same) {
      ++cell_fits_reused_;
    } else {
      ++cell_fits_;
      cached.points = cell.points;
      cached.diverged = cell.diverged;
      cached.borrowed = sel.borrowed_lr_shape;
      cached.optimum = CellOptimum{};
      cached.why.clear();
      cached.usable = select_optimum(cell, sel, cached.optimum, cached.why);
    }
    out = cached.optimum;
    why = cached.why;
    return cached.usable;
  };
  fit.optima = select_optima(cells, selection, nullptr, cached_select);
  if (fit.optima.size() < 2) {
    note = "cannot fit: " + std::to_string(fit.optima.size()) + " usable (N, D) cells (need at least 2)";
    return fit;
  }
  try {
    // The default fit's own lr and batch laws (planning_fit_options: weighted, no loss law).
    LrBatchLaws laws = fit_lr_batch_laws(fit.optima, planning_fit_options(job_));
    fit.lr_law = std::move(laws.lr);
    fit.batch_law = std::move(laws.batch);
  } catch (const Error& err) {
    note = err.what();
  }
  return fit;
}

PlanRound Planner::adaptive_round(int index) {
  PlanRound round;
  round.index = index;
  // seen_: the results of rounds 0..index-2, in plan order.
  const SeenFit fit = fit_seen(round.estimate.note);
  round.estimate.results = seen_.results.size();
  for (const auto& r : seen_.results) round.estimate.compute += r.trial.point.compute();
  if (fit.lr_law && fit.batch_law) {
    round.estimate.ok = true;
    round.estimate.lr = fit.lr_law->prediction_interval(job_.target_params, job_.target_tokens);
    round.estimate.batch_tokens = fit.batch_law->prediction_interval(job_.target_params, job_.target_tokens);
  }

  const std::vector<CellOptimum>& optima = fit.optima;
  std::optional<LawLeverage> lr_lev, batch_lev;
  if (fit.lr_law && fit.batch_law) {
    lr_lev = LawLeverage::of(&*fit.lr_law, optima, true, job_.target_params, job_.target_tokens);
    batch_lev = LawLeverage::of(&*fit.batch_law, optima, false, job_.target_params, job_.target_tokens);
  }

  // Per cell: the ordered points that would pin its optimum down, and what the cell holds.
  struct Proposal {
    std::size_t grid_index;
    const char* why;
    bool edge;  // beyond the points the cell holds
  };
  struct CellPlan {
    std::vector<Proposal> proposals;
    std::size_t next = 0;
    std::size_t identifying = 0;  // proposals at the head, taken before other cells densify
    bool unidentified = true;
    double observed = 0, planned = 0;
    const CellOptimum* optimum = nullptr;
  };
  std::vector<CellPlan> plans(cells_.size());
  std::vector<char> listed_flag(grid_.size(), 0);
  for (std::size_t ci = 0; ci < cells_.size(); ++ci) {
    const CellInfo& c = cells_[ci];
    CellPlan& plan = plans[ci];
    for (const auto& o : optima)
      if (o.params == c.params && o.tokens == c.tokens) plan.optimum = &o;
    // A bowl that could not be fitted (the argmin stands in) or a flagged optimum is not identified
    // yet, whatever its nominal error says.
    plan.unidentified = !plan.optimum || !plan.optimum->note.empty() ||
                        std::any_of(plan.optimum->flags.begin(), plan.optimum->flags.end(), [](const std::string& f) {
                          return f.find("poorly identified") != std::string::npos;
                        });
    std::vector<std::size_t> holds;  // planned points of the cell
    std::optional<std::size_t> best_seen;
    double best_loss = 0;
    for (std::size_t g : c.candidates) {
      if (!planned_in(g)) continue;
      holds.push_back(g);
      const auto it = seen_at_.find(grid_[g].id);
      if (it == seen_at_.end()) continue;
      const TrialOutcome& out = seen_.results[it->second].outcome;
      if (out.state != TrialState::Done || !std::isfinite(out.smooth_loss)) continue;
      plan.observed += 1;
      if (!best_seen || out.smooth_loss < best_loss) best_seen = g, best_loss = out.smooth_loss;
    }
    plan.planned = static_cast<double>(holds.size());
    // The cell's current optimum and the width of its near-optimal region.
    double x0 = 0.5 * (c.x_lo + c.x_hi), y0 = 0.5 * (c.y_lo + c.y_hi);
    double ax = 2 * c.x_step, ay = 2 * c.y_step;
    if (plan.optimum && plan.optimum->lr > 0 && plan.optimum->batch_tokens > 0) {
      x0 = std::log(plan.optimum->lr);
      y0 = std::log(plan.optimum->batch_tokens);
      const auto& o = *plan.optimum;
      if (o.plateau_lr_hi > o.plateau_lr_lo && o.plateau_lr_lo > 0)
        ax = std::clamp(std::log(o.plateau_lr_hi / o.plateau_lr_lo), c.x_step, 3 * c.x_step);
      if (o.plateau_b_hi > o.plateau_b_lo && o.plateau_b_lo > 0)
        ay = std::clamp(std::log(o.plateau_b_hi / o.plateau_b_lo), c.y_step, 3 * c.y_step);
    } else if (best_seen) {
      x0 = x_[*best_seen];
      y0 = y_[*best_seen];
    }
    double seen_x_lo = c.x_hi, seen_x_hi = c.x_lo, seen_y_lo = c.y_hi, seen_y_hi = c.y_lo;
    for (std::size_t g : holds) {
      seen_x_lo = std::min(seen_x_lo, x_[g]), seen_x_hi = std::max(seen_x_hi, x_[g]);
      seen_y_lo = std::min(seen_y_lo, y_[g]), seen_y_hi = std::max(seen_y_hi, y_[g]);
    }
    std::vector<std::size_t> listed;  // this round's proposals of the cell (listed_flag marks them)
    auto covered = [&](double tx, double ty) {
      auto near = [&](std::size_t g) {
        return std::fabs(x_[g] - tx) <= 0.5 * c.x_step && std::fabs(y_[g] - ty) <= 0.5 * c.y_step;
      };
      return std::any_of(holds.begin(), holds.end(), near) || std::any_of(listed.begin(), listed.end(), near);
    };
    struct Target {
      double i, j;
      const char* why;
    };
    // A lattice that spans the fit's window in ln lr on both sides of the optimum, on its batch row
    // and one width above and below, with no point at the vertex itself: the asym fit's vertex is
    // least biased and least noisy from points where the loss rises (offline, on the surrogate's
    // landscape with 18 points: bias -1.0% and RMSE 4.2% against -2.6% and 6.0% for a 3x3 ring at
    // one width with four points two widths out; README "Adaptive sweeps").
    static const Target kTargets[] = {
        {-1.3, 0, "lr below the optimum"},
        {1.3, 0, "lr above the optimum"},
        {-0.45, 0, "lr just below the optimum"},
        {0.45, 0, "lr just above the optimum"},
        {-0.45, -1, "around the optimum"},
        {0.45, 1, "around the optimum"},
        {-0.45, 1, "around the optimum"},
        {0.45, -1, "around the optimum"},
        {-2.2, 0, "lr far below"},
        {2.2, 0, "lr far above"},
        {-1.3, -1, "around the optimum"},
        {1.3, 1, "around the optimum"},
        {-1.3, 1, "around the optimum"},
        {1.3, -1, "around the optimum"},
        {-2.2, -1, "lr far below"},
        {2.2, 1, "lr far above"},
        {-2.2, 1, "lr far below"},
        {2.2, -1, "lr far above"},
    };
    // The first ten come before any other cell's densifying points; all of them while the optimum
    // is not identified (it may lie beyond the points seen).
    const std::size_t kFirstRing = plan.unidentified ? std::size(kTargets) : 10;
    for (std::size_t ti = 0; ti < std::size(kTargets); ++ti) {
      const Target& t = kTargets[ti];
      const double tx = x0 + t.i * ax, ty = y0 + t.j * ay;
      if (covered(tx, ty)) continue;
      std::optional<std::size_t> best;
      double best_d = 0;
      for (std::size_t g : c.candidates) {
        if (planned_in(g) || listed_flag[g]) continue;
        const double dx = (x_[g] - tx) / c.x_step, dy = (y_[g] - ty) / c.y_step;
        const double d = dx * dx + dy * dy;
        if (d <= 1.5 * 1.5 && (!best || d < best_d)) best = g, best_d = d;
      }
      if (!best) continue;
      listed.push_back(*best);
      listed_flag[*best] = 1;
      const bool edge = x_[*best] > seen_x_hi + 0.5 * c.x_step || x_[*best] < seen_x_lo - 0.5 * c.x_step ||
                        y_[*best] > seen_y_hi + 0.5 * c.y_step || y_[*best] < seen_y_lo - 0.5 * c.y_step;
      if (edge && !job_.adaptive.extend_edges) continue;
      plan.proposals.push_back(Proposal{*best, t.why, edge});
      if (ti < kFirstRing) plan.identifying = plan.proposals.size();
    }
    // Then densify near the optimum, nearest first.
    std::vector<std::pair<double, std::size_t>> rest;
    for (std::size_t g : c.candidates) {
      if (planned_in(g) || listed_flag[g]) continue;
      const double dx = (x_[g] - x0) / ax, dy = (y_[g] - y0) / ay;
      const double d = dx * dx + dy * dy;
      if (d <= 2.0 * 2.0) rest.emplace_back(d, g);  // within the fit window (a rise of ~4%)
    }
    std::sort(rest.begin(), rest.end());
    for (const auto& [d, g] : rest) plan.proposals.push_back(Proposal{g, "near the optimum", false});
    for (std::size_t g : listed) listed_flag[g] = 0;
  }

  // Across cells: greedily, the point that most reduces the target's variance per FLOP.
  const std::size_t round_size = job_.adaptive.round_trials > 0 ? static_cast<std::size_t>(job_.adaptive.round_trials)
                                                                : std::max<std::size_t>(8, 2 * cells_.size());
  double compute = planned_compute_;
  const double lr_typical = LawLeverage::median_se2(optima, true),
               batch_typical = LawLeverage::median_se2(optima, false);
  while (round.trials.size() < round_size) {
    // A cell whose optimum is not yet surrounded comes first: until it is, its error says little.
    std::optional<std::size_t> pick;
    std::pair<bool, double> pick_value{false, 0};
    for (std::size_t ci = 0; ci < cells_.size(); ++ci) {
      CellPlan& plan = plans[ci];
      if (plan.next >= plan.proposals.size()) continue;
      const CellInfo& c = cells_[ci];
      double gain = 0;
      if (!plan.optimum || (!lr_lev && !batch_lev)) {
        gain = 1.0;  // a cell outside the laws: it needs points before it can count
      } else {
        const double observed = std::max(1.0, plan.observed), planned = std::max(observed, plan.planned);
        if (lr_lev)
          gain += lr_lev->gain(c.params, c.tokens,
                               plan.unidentified ? 5 * lr_typical : LawLeverage::se2(*plan.optimum, true, lr_typical),
                               lr_typical, observed, planned);
        if (batch_lev)
          gain += batch_lev->gain(
              c.params, c.tokens,
              plan.unidentified ? 5 * batch_typical : LawLeverage::se2(*plan.optimum, false, batch_typical),
              batch_typical, observed, planned);
      }
      const std::pair<bool, double> value{plan.next < plan.identifying, gain / (6.0 * c.params * c.tokens)};
      if (!pick || value > pick_value) pick = ci, pick_value = value;
    }
    if (!pick) break;
    CellPlan& plan = plans[*pick];
    const Proposal& t = plan.proposals[plan.next];
    const double cost = grid_[t.grid_index].point.compute();
    if (compute + cost > budget_ * (1 + 1e-12)) {
      round.budget_stop = true;  // a prefix of the larger budgets' round (see PlanRound)
      break;
    }
    compute += cost;
    round.trials.push_back(PlannedTrial{t.grid_index, grid_[t.grid_index].id,
                                        t.edge ? std::string("toward the edge: ") + t.why : std::string(t.why)});
    plan.next += 1;
    plan.planned += 1;
  }
  round.planned_compute = compute;
  return round;
}

void Planner::commit(PlanRound round) {
  std::size_t missing = 0;
  for (const auto& t : round.trials) {
    planned_[t.grid_index] = 1;
    round_of_[t.id] = rounds_.size();
    missing += results_.count(t.id) ? 0 : 1;
  }
  missing_.push_back(missing);
  planned_compute_ = round.planned_compute;
  rounds_.push_back(std::move(round));
}

std::optional<Planner::Pending> Planner::prepare() const {
  if (finished_) return std::nullopt;
  Pending p;
  p.index = static_cast<int>(rounds_.size());
  if (p.index < 2) return p;
  for (std::size_t r = 0; r + 2 <= rounds_.size(); ++r)
    if (missing_[r] > 0) return std::nullopt;  // round k waits for the results of rounds 0..k-2
  for (const auto& t : rounds_[rounds_.size() - 2].trials) p.newly_seen.push_back(results_.at(t.id));
  return p;
}

PlanRound Planner::decide(Pending pending) {
  const auto started = std::chrono::steady_clock::now();
  struct Timer {
    std::chrono::steady_clock::time_point start;
    double& total;
    ~Timer() { total += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }
  } timer{started, planning_seconds_};
  if (pending.index < 2) return coarse_round(pending.index == 0);
  for (auto& r : pending.newly_seen) {
    seen_at_[r.trial.id] = seen_.results.size();
    seen_.results.push_back(std::move(r));
  }
  return adaptive_round(pending.index);
}

bool Planner::conclude(PlanRound round) {
  if (round.index >= 2) {
    const double w = job_.adaptive.target_rel_width;
    if (w > 0 && round.estimate.ok && round.estimate.lr_rel_width() < w && round.estimate.batch_rel_width() < w) {
      finished_ = true;
      finish_reason_ = "the target's 95% prediction intervals are narrower than " + format_short(w) + " (lr " +
                       format_short(round.estimate.lr_rel_width()) + ", batch " +
                       format_short(round.estimate.batch_rel_width()) + ")";
      return false;
    }
  }
  const bool adaptive = round.index >= 2;
  const bool empty = round.trials.empty();
  const bool previous_empty = !rounds_.empty() && rounds_.back().trials.empty();
  const bool budget_stop = round.budget_stop;
  commit(std::move(round));
  if (budget_stop) {
    finished_ = true;
    finish_reason_ = "the budget is spent (the next point would exceed it)";
    return true;
  }
  if (!adaptive) return true;
  if (planned_compute_ >= budget_ * (1 - 1e-9)) {
    finished_ = true;
    finish_reason_ = "the budget is spent";
  } else if (empty && previous_empty) {
    finished_ = true;
    finish_reason_ = "no grid point left near any cell's optimum within the budget";
  }
  return true;
}

int Planner::advance() {
  int added = 0;
  while (auto pending = prepare()) added += conclude(decide(std::move(*pending))) ? 1 : 0;
  return added;
}

}  // namespace hpsweep
