#include "hpsweep/calibrate/calibrate.hpp"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <tuple>

#include "hpsweep/store/stored_job.hpp"
#include "hpsweep/trials/trial.hpp"
#include "hpsweep/util/error.hpp"

namespace hpsweep {

namespace {

std::size_t count_cells(const std::vector<TrialPoint>& points) {
  std::set<std::pair<double, double>> cells;
  for (const auto& p : points) cells.insert({p.params, p.tokens});
  return cells.size();
}

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Box-Muller over mt19937_64: the standard distributions are implementation-defined.
double normal(std::mt19937_64& rng) {
  const double u1 = (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53;
  const double u2 = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

// One replicate sweep: the design's points with simulated losses, grouped into cells.
std::vector<Cell> simulate(const CalibrationDesign& design, const GroundTruth& truth, double noise,
                           std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::map<std::pair<double, double>, Cell> cells;
  TrialId id = 1;
  for (const auto& p : design.points) {
    Cell& c = cells[{p.params, p.tokens}];
    c.params = p.params;
    c.tokens = p.tokens;
    const double z = normal(rng);  // drawn for every point, so replicates stay aligned
    const double l = truth.expected_loss(p.params, p.tokens, p.lr, p.batch_tokens());
    if (!std::isfinite(l)) {
      ++c.diverged;
    } else {
      c.points.push_back(CellPoint{id, p.lr, p.batch_tokens(), p.wd, l * (1 + noise * z), p.batch});
    }
    ++id;
  }
  std::vector<Cell> out;
  for (auto& [k, c] : cells)
    if (!c.points.empty()) out.push_back(std::move(c));
  return out;
}

// One estimated quantity of one replicate: estimate and 95% interval, all in log units for
// coefficients and predictions.
struct Estimate {
  double value = NAN, lo = NAN, hi = NAN;
};

struct Quantity {
  std::string name;
  double truth;
  std::function<std::optional<Estimate>(const FitReport&)> get;
};

std::optional<Estimate> coefficient(const std::optional<PowerLaw>& law, const std::string& name) {
  if (!law) return std::nullopt;
  for (std::size_t k = 0; k < law->coef_names.size(); ++k)
    if (law->coef_names[k] == name) {
      const Interval& i = law->coefs[k];
      if (k == 0) return Estimate{std::log(i.estimate), std::log(i.lo), std::log(i.hi)};
      return Estimate{i.estimate, i.lo, i.hi};
    }
  return std::nullopt;
}

Estimate log_interval(const Interval& i) { return Estimate{std::log(i.estimate), std::log(i.lo), std::log(i.hi)}; }

std::vector<Quantity> quantities(const GroundTruth& t, double N, double D) {
  const SurrogateParams& p = t.params;
  auto coef = [](std::string law, std::string name) {
    return [law, name](const FitReport& r) { return coefficient(law == "lr" ? r.lr_law : r.batch_law, name); };
  };
  auto target = [](bool lr, bool prediction) {
    return [lr, prediction](const FitReport& r) -> std::optional<Estimate> {
      if (!r.prediction) return std::nullopt;
      const Prediction& q = *r.prediction;
      return log_interval(lr ? (prediction ? q.lr_prediction : q.lr)
                             : (prediction ? q.batch_prediction : q.batch_tokens));
    };
  };
  return {
      {"lr_n_exp", p.lr_n_exp, coef("lr", "lr_n_exp")},
      {"lr_d_exp", p.lr_d_exp, coef("lr", "lr_d_exp")},
      {"batch_d_exp", p.batch_d_exp, coef("batch", "batch_d_exp")},
      {"ln lr_coef", std::log(p.lr_coef), coef("lr", "lr_coef")},
      {"ln batch_coef", std::log(p.batch_coef), coef("batch", "batch_coef")},
      {"ln lr* at target (confidence of the law)", std::log(p.optimal_lr(N, D)), target(true, false)},
      {"ln lr* at target (prediction)", std::log(p.optimal_lr(N, D)), target(true, true)},
      {"ln B* at target (confidence of the law)", std::log(p.optimal_batch_tokens(D)), target(false, false)},
      {"ln B* at target (prediction)", std::log(p.optimal_batch_tokens(D)), target(false, true)},
  };
}

}  // namespace

CalibrationDesign design_from_job(const JobSpec& job, const std::string& source) {
  CalibrationDesign d;
  d.source = source;
  for (const auto& t : expand_grid(job)) d.points.push_back(t.point);
  if (job.target_params > 0) d.target_params = job.target_params;
  if (job.target_tokens > 0) d.target_tokens = job.target_tokens;
  if (!d.points.empty()) d.seq_len = d.points.front().seq_len;
  d.cells = count_cells(d.points);
  return d;
}

CalibrationDesign design_from_sweep(const SweepLog& log, const std::string& source) {
  CalibrationDesign d;
  d.source = source;
  for (const auto& [id, r] : log.latest_by_id()) d.points.push_back(r->trial.point);
  {
    try {
      if (const auto job = stored_job(log)) {
        if (job->target_params > 0) d.target_params = job->target_params;
        if (job->target_tokens > 0) d.target_tokens = job->target_tokens;
      }
    } catch (const InputError&) {
    }
  }
  if (!d.points.empty()) d.seq_len = d.points.front().seq_len;
  d.cells = count_cells(d.points);
  return d;
}

double GroundTruth::expected_loss(double n, double d, double lr, double bt) const {
  double l = params.expected_loss(n, d, lr, bt, 0.1);
  const double x = std::log(lr / params.optimal_lr(n, d));
  if (std::isfinite(l) && x > 0 && lr_high_cubic != 0)
    l += (params.E + params.A / std::pow(n, params.alpha) + params.B / std::pow(d, params.beta)) * params.lr_curvature *
         lr_high_cubic * x * x * x;
  return l;
}

std::vector<GroundTruth> standard_truths() {
  std::vector<GroundTruth> out;
  for (const char* name : {"symmetric", "asymmetric", "cubic"}) out.push_back(truth_by_name(name));
  return out;
}

GroundTruth truth_by_name(const std::string& name) {
  GroundTruth t;
  t.name = name;
  t.params.wd_curvature = 0;  // the optimum in lr and B is then exactly the law's
  if (name == "symmetric") {
    t.params.lr_high_asymmetry = 0;
  } else if (name == "asymmetric") {
    t.params.lr_high_asymmetry = 1;  // twice the curvature above the optimum (the surrogate's default)
  } else if (name == "cubic") {
    t.params.lr_high_asymmetry = 0;
    t.lr_high_cubic = 1;
  } else {
    throw InputError("calibrate: unknown ground truth '" + name + "' (use symmetric, asymmetric, cubic)");
  }
  return t;
}

GroundTruth fitted_truth(const FitReport& fit, bool symmetric) {
  if (!fit.lr_law || !fit.batch_law)
    throw InputError("calibrate: the sweep's fit has no lr or batch law to simulate from");
  GroundTruth t;
  t.name = symmetric ? "fitted-symmetric" : "fitted";
  SurrogateParams& p = t.params;
  p.wd_curvature = 0;
  auto coef = [](const PowerLaw& law, const std::string& name) -> std::optional<double> {
    for (std::size_t k = 0; k < law.coef_names.size(); ++k)
      if (law.coef_names[k] == name) return law.beta(static_cast<Eigen::Index>(k));
    return std::nullopt;
  };
  for (const auto& name : fit.batch_law->coef_names)
    if (name != "batch_coef" && name != "batch_d_exp")
      throw InputError("calibrate: the fitted truth has no " + name + " term (fit without --batch-n-term)");
  p.lr_coef = std::exp(coef(*fit.lr_law, "lr_coef").value_or(0));
  p.lr_n_exp = coef(*fit.lr_law, "lr_n_exp").value_or(0);  // a dropped term is no dependence
  p.lr_d_exp = coef(*fit.lr_law, "lr_d_exp").value_or(0);
  p.batch_coef = std::exp(coef(*fit.batch_law, "batch_coef").value_or(0));  // tokens, as the surrogate
  p.batch_d_exp = coef(*fit.batch_law, "batch_d_exp").value_or(0);
  if (fit.loss_law.ok) {  // the level only scales the relative penalties and noise
    const auto& th = fit.loss_law.theta;
    p.E = std::exp(th[0]), p.A = std::exp(th[1]), p.alpha = th[2], p.B = std::exp(th[3]), p.beta = th[4];
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::vector<double> lr_c, b_c, noise;
  for (const auto& o : fit.optima) {
    if (std::isfinite(o.lr_curvature) && o.lr_curvature > 0) lr_c.push_back(o.lr_curvature);
    if (std::isfinite(o.batch_curvature) && o.batch_curvature > 0) b_c.push_back(o.batch_curvature);
    if (std::isfinite(o.noise)) noise.push_back(o.noise);
  }
  if (lr_c.empty() || b_c.empty() || noise.empty())
    throw InputError("calibrate: no cell of the sweep has a fitted bowl (fitted truths need the asym selection)");
  p.lr_curvature = median(lr_c), p.batch_curvature = median(b_c);
  t.measured_noise = median(noise);
  p.lr_high_asymmetry = 0;
  if (!symmetric)
    if (const auto shape = pooled_lr_shape(fit.optima)) {
      p.lr_high_asymmetry = std::max(0.0, shape->upper_ratio) - 1;
      t.lr_high_cubic = std::max(0.0, shape->upper_cubic);
    }
  return t;
}

CalibrationReport calibrate(const CalibrationDesign& design, const CalibrationOptions& options) {
  if (design.points.empty()) throw InputError("calibrate: the design has no trial points");
  if (options.replicates < 2) throw InputError("calibrate: --replicates must be at least 2");
  CalibrationReport report;
  report.design = design;
  report.selection = options.fit.selection.text();
  report.replicates = options.replicates;
  report.resamples = options.fit.bootstrap.resamples;
  FitOptions fo = options.fit;
  fo.loss_law = false;
  fo.holdout_largest = false;
  const double N = design.target_params, D = design.target_tokens;
  std::uint64_t condition_index = 0;
  for (const auto& truth0 : options.truths)
    for (double noise : truth0.measured_noise && !options.noises_given ? std::vector<double>{*truth0.measured_noise}
                                                                       : options.noises) {
      GroundTruth truth = truth0;
      truth.params.noise = noise;
      const auto qs = quantities(truth, N, D);
      const auto reps = static_cast<std::size_t>(options.replicates);
      std::vector<std::vector<std::optional<Estimate>>> est(reps, std::vector<std::optional<Estimate>>(qs.size()));
      std::vector<char> failed(reps, 0);
      const std::uint64_t cond_seed = mix(options.seed ^ mix(++condition_index));
      tbb::parallel_for(tbb::blocked_range<std::size_t>(0, reps), [&](const tbb::blocked_range<std::size_t>& range) {
        for (std::size_t rep = range.begin(); rep < range.end(); ++rep) {
          const auto cells = simulate(design, truth, noise, mix(cond_seed + rep));
          try {
            FitOptions o = fo;
            o.bootstrap.seed = mix(cond_seed ^ (rep + 0x5eed));
            const FitReport r = fit_cells(cells, o, N, D, design.seq_len);
            for (std::size_t q = 0; q < qs.size(); ++q) est[rep][q] = qs[q].get(r);
          } catch (const Error&) {
            failed[rep] = 1;
          }
        }
      });
      CalibrationCondition c;
      c.truth = truth.name;
      c.noise = noise;
      for (char f : failed) c.failed += f;
      for (std::size_t q = 0; q < qs.size(); ++q) {
        QuantityStats s;
        s.name = qs[q].name;
        s.truth = qs[q].truth;
        double sum = 0, sum2 = 0, covered = 0, width = 0, with_interval = 0;
        for (std::size_t rep = 0; rep < reps; ++rep) {
          const auto& e = est[rep][q];
          if (!e || !std::isfinite(e->value)) continue;
          const double err = e->value - s.truth;
          sum += err, sum2 += err * err, ++s.fits;
          if (std::isfinite(e->lo) && std::isfinite(e->hi)) {
            with_interval += 1;
            width += e->hi - e->lo;
            covered += (e->lo <= s.truth && s.truth <= e->hi) ? 1 : 0;
          }
        }
        if (s.fits == 0) continue;  // the law has no such term on this design
        const auto n = static_cast<double>(s.fits);
        s.bias = sum / n;
        s.rmse = std::sqrt(sum2 / n);
        s.coverage = with_interval > 0 ? covered / with_interval : NAN;
        s.mean_width = with_interval > 0 ? width / with_interval : NAN;
        c.stats.push_back(s);
      }
      report.conditions.push_back(std::move(c));
    }
  return report;
}

}  // namespace hpsweep
