#include "hpsweep/reducer/laws.hpp"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <unsupported/Eigen/NonLinearOptimization>

namespace hpsweep {

OlsResult ols(const Eigen::MatrixXd& X, const Eigen::VectorXd& y) {
  OlsResult r;
  r.n = static_cast<std::size_t>(X.rows());
  Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(X);
  r.beta = qr.solve(y);
  const Eigen::VectorXd resid = y - X * r.beta;
  const double ss_res = resid.squaredNorm();
  const double ss_tot = (y.array() - y.mean()).matrix().squaredNorm();
  r.r2 = ss_tot > 0 ? 1 - ss_res / ss_tot : 1.0;
  const double dof = static_cast<double>(X.rows() - X.cols());
  r.se = Eigen::VectorXd::Constant(X.cols(), std::numeric_limits<double>::quiet_NaN());
  if (dof > 0 && qr.rank() == X.cols()) {
    const Eigen::MatrixXd cov = (ss_res / dof) * (X.transpose() * X).inverse();
    r.se = cov.diagonal().cwiseSqrt();
  }
  return r;
}

namespace {
double percentile(const std::vector<double>& sorted, double q) {
  // Linear interpolation between closest ranks (numpy's default).
  if (sorted.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const std::size_t i = static_cast<std::size_t>(std::floor(pos));
  const double f = pos - static_cast<double>(i);
  return i + 1 < sorted.size() ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

Interval summarize(double estimate, std::vector<double> s) {
  Interval out;
  out.estimate = estimate;
  std::erase_if(s, [](double v) { return !std::isfinite(v); });
  if (s.empty()) {
    out.mean = out.median = out.lo = out.hi = std::numeric_limits<double>::quiet_NaN();
    return out;
  }
  std::sort(s.begin(), s.end());
  double sum = 0;
  for (double v : s) sum += v;  // sorted order: the same sum whatever produced the samples
  out.mean = sum / static_cast<double>(s.size());
  out.median = percentile(s, 0.5);
  out.lo = percentile(s, 0.025);
  out.hi = percentile(s, 0.975);
  return out;
}

Interval summarize_log(double log_estimate, std::vector<double> log_samples) {
  Interval l = summarize(log_estimate, std::move(log_samples));
  return Interval{std::exp(l.estimate), std::exp(l.mean), std::exp(l.median), std::exp(l.lo), std::exp(l.hi), true};
}

double t_quantile_975(double dof) {
  if (!(dof > 0) || !std::isfinite(dof)) return 1.959963984540054;
  return boost::math::quantile(boost::math::students_t(dof), 0.975);
}

Interval t_interval(double estimate, double se, double dof, bool log_scale) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double half = std::isfinite(se) && dof > 0 ? t_quantile_975(dof) * se : nan;
  Interval i{estimate, estimate, estimate, estimate - half, estimate + half, log_scale, true};
  if (log_scale) i.estimate = i.mean = i.median = std::exp(estimate), i.lo = std::exp(i.lo), i.hi = std::exp(i.hi);
  return i;
}

std::vector<std::size_t> bootstrap_indices(std::size_t n, std::uint64_t seed, int resample) {
  std::mt19937_64 rng(splitmix64(seed ^ splitmix64(static_cast<std::uint64_t>(resample))));
  std::vector<std::size_t> idx(n);
  for (auto& i : idx) i = static_cast<std::size_t>(rng() % n);
  return idx;
}

namespace {
// Rows of the bootstrap sample: points directly, or every point of the drawn cells.
std::vector<std::size_t> resample_rows(const std::vector<LawPoint>& pts, const BootstrapOptions& b, int r,
                                       const std::vector<std::vector<std::size_t>>& rows_of_cell) {
  if (!b.by_cell) return bootstrap_indices(pts.size(), b.seed, r);
  std::vector<std::size_t> rows;
  for (std::size_t c : bootstrap_indices(rows_of_cell.size(), b.seed, r))
    rows.insert(rows.end(), rows_of_cell[c].begin(), rows_of_cell[c].end());
  return rows;
}
}  // namespace

double PowerLaw::predict(double N, double D) const { return std::exp(features(N, D).dot(beta)); }

double PowerLaw::log_se(double N, double D, bool with_scatter) const {
  const Eigen::VectorXd f = features(N, D);
  double var = 0;
  if (weighted) {
    var = f.dot(cov * f) + (with_scatter ? scatter_var : 0.0);
  } else {
    // Standard deviation of the bootstrap predictions, plus the cells' scatter about the law.
    double sum = 0, sum2 = 0, n = 0;
    for (const auto& b : boot) {
      const double v = f.dot(b);
      if (!std::isfinite(v)) continue;
      sum += v, sum2 += v * v, n += 1;
    }
    if (n < 2) return std::numeric_limits<double>::quiet_NaN();
    var = std::max(0.0, (sum2 - sum * sum / n) / (n - 1)) + (with_scatter ? cell_residual_var : 0.0);
  }
  return std::sqrt(std::max(0.0, var));
}

Interval PowerLaw::prediction_interval(double N, double D) const {
  const double k = static_cast<double>(beta.size());
  const double df = weighted ? dof : static_cast<double>(cells) - k;
  return t_interval(features(N, D).dot(beta), log_se(N, D, true), df, true);
}

Interval PowerLaw::predict_interval(double N, double D) const {
  const Eigen::VectorXd f = features(N, D);
  if (weighted) return t_interval(f.dot(beta), log_se(N, D, false), dof, true);
  std::vector<double> s;
  s.reserve(boot.size());
  for (const auto& b : boot) s.push_back(f.dot(b));
  return summarize_log(f.dot(beta), std::move(s));
}

PowerLaw fit_power_law(const std::string& name, const std::string& formula, std::vector<std::string> coef_names,
                       const std::vector<LawPoint>& points, const std::function<double(const LawPoint&)>& y,
                       std::function<Eigen::VectorXd(double, double)> features, const BootstrapOptions& boot) {
  PowerLaw law;
  law.name = name;
  law.formula = formula;
  law.coef_names = std::move(coef_names);
  law.features = std::move(features);
  const std::size_t n = points.size();
  const int k = static_cast<int>(law.features(points[0].N, points[0].D).size());
  Eigen::MatrixXd X(n, k);
  Eigen::VectorXd Y(n);
  std::vector<std::vector<std::size_t>> rows_of_cell;
  std::map<std::size_t, std::size_t> cell_index;
  for (std::size_t i = 0; i < n; ++i) {
    X.row(static_cast<Eigen::Index>(i)) = law.features(points[i].N, points[i].D).transpose();
    Y(static_cast<Eigen::Index>(i)) = std::log(y(points[i]));
    auto [it, fresh] = cell_index.emplace(points[i].cell, rows_of_cell.size());
    if (fresh) rows_of_cell.emplace_back();
    rows_of_cell[it->second].push_back(i);
  }
  const OlsResult full = ols(X, Y);
  law.beta = full.beta;
  law.r2 = full.r2;
  law.points = n;
  law.cells = rows_of_cell.size();
  law.ols_se.assign(full.se.data(), full.se.data() + full.se.size());

  law.boot.assign(static_cast<std::size_t>(std::max(0, boot.resamples)), Eigen::VectorXd());
  tbb::parallel_for(tbb::blocked_range<int>(0, boot.resamples), [&](const tbb::blocked_range<int>& range) {
    for (int r = range.begin(); r < range.end(); ++r) {
      const auto rows = resample_rows(points, boot, r, rows_of_cell);
      Eigen::MatrixXd Xb(rows.size(), k);
      Eigen::VectorXd Yb(rows.size());
      for (std::size_t i = 0; i < rows.size(); ++i) {
        Xb.row(static_cast<Eigen::Index>(i)) = X.row(static_cast<Eigen::Index>(rows[i]));
        Yb(static_cast<Eigen::Index>(i)) = Y(static_cast<Eigen::Index>(rows[i]));
      }
      const auto qr = Xb.colPivHouseholderQr();
      // A resample that cannot identify every coefficient (all its cells at one N, say) is
      // left out rather than reported as a wild solution.
      law.boot[static_cast<std::size_t>(r)] =
          qr.rank() == k ? Eigen::VectorXd(qr.solve(Yb))
                         : Eigen::VectorXd::Constant(k, std::numeric_limits<double>::quiet_NaN());
    }
  });
  // Scatter of the cells about the law: variance of the cell-mean residuals.
  if (law.cells > static_cast<std::size_t>(k)) {
    const Eigen::VectorXd resid = Y - X * law.beta;
    double ss = 0;
    for (const auto& rows : rows_of_cell) {
      double m = 0;
      for (std::size_t i : rows) m += resid(static_cast<Eigen::Index>(i));
      m /= static_cast<double>(rows.size());
      ss += m * m;
    }
    law.cell_residual_var = ss / static_cast<double>(law.cells - static_cast<std::size_t>(k));
  }
  for (int c = 0; c < k; ++c) {
    std::vector<double> s;
    s.reserve(law.boot.size());
    for (const auto& b : law.boot) s.push_back(b(c));
    law.coefs.push_back(c == 0 ? summarize_log(law.beta(c), std::move(s)) : summarize(law.beta(c), std::move(s)));
  }
  return law;
}

PowerLaw fit_weighted_law(const std::string& name, const std::string& formula, std::vector<std::string> coef_names,
                          const std::vector<LawPoint>& points, const std::function<double(const LawPoint&)>& y,
                          const std::function<double(const LawPoint&)>& se,
                          std::function<Eigen::VectorXd(double, double)> features) {
  PowerLaw law;
  law.name = name;
  law.formula = formula;
  law.coef_names = std::move(coef_names);
  law.features = std::move(features);
  law.weighted = true;
  const auto n = static_cast<Eigen::Index>(points.size());
  const auto k = static_cast<Eigen::Index>(law.features(points[0].N, points[0].D).size());
  Eigen::MatrixXd X(n, k);
  Eigen::VectorXd Y(n), v(n);
  std::vector<double> finite;
  for (Eigen::Index i = 0; i < n; ++i) {
    const LawPoint& p = points[static_cast<std::size_t>(i)];
    X.row(i) = law.features(p.N, p.D).transpose();
    Y(i) = std::log(y(p));
    const double s = se(p);
    v(i) = std::isfinite(s) && s > 0 ? s * s : std::numeric_limits<double>::quiet_NaN();
    if (std::isfinite(v(i))) finite.push_back(v(i));
  }
  // A cell without its own error counts as a typical cell.
  std::sort(finite.begin(), finite.end());
  const double typical = finite.empty() ? 1.0 : finite[finite.size() / 2];
  for (Eigen::Index i = 0; i < n; ++i)
    if (!std::isfinite(v(i))) v(i) = typical;
  law.points = law.cells = points.size();
  law.dof = static_cast<double>(n - k);

  // Weighted fit for a given tau^2; returns the weighted residual sum of squares Q.
  Eigen::VectorXd w(n);
  auto solve = [&](double tau2) {
    w = (v.array() + tau2).inverse().matrix();
    const Eigen::VectorXd sw = w.cwiseSqrt();
    const Eigen::MatrixXd Xw = sw.asDiagonal() * X;
    const Eigen::VectorXd Yw = sw.asDiagonal() * Y;
    law.beta = Xw.colPivHouseholderQr().solve(Yw);
    return (Yw - Xw * law.beta).squaredNorm();
  };
  double tau2 = 0;
  double q = solve(0);
  if (law.dof > 0 && q > law.dof) {
    // Paule-Mandel: the tau^2 at which Q equals its expectation, cells - parameters.
    double lo = 0, hi = std::max(1e-12, (Y.array() - Y.mean()).square().mean());
    while (solve(hi) > law.dof && hi < 1e6) hi *= 4;
    for (int it = 0; it < 80; ++it) {
      const double mid = 0.5 * (lo + hi);
      (solve(mid) > law.dof ? lo : hi) = mid;
    }
    tau2 = hi;
    q = solve(tau2);
  }
  law.scatter_var = tau2;
  const Eigen::MatrixXd XtWX = X.transpose() * w.asDiagonal() * X;
  Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(XtWX);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (law.dof > 0 && qr.rank() == k) {
    // Knapp-Hartung: scale by the weighted residuals, so errors that are right only up to a
    // factor still give intervals of the right width.
    // Cells lying exactly on the law (identical argmin optima, say) would give an interval of
    // zero width: then the cells' own errors set it. (Always taking the larger of the two
    // over-covered: 96-100% in `hpsweep calibrate`.)
    const double scale = q / law.dof;
    law.cov = (scale > 1e-6 ? scale : 1.0) * XtWX.inverse();
  } else {
    law.cov = Eigen::MatrixXd::Constant(k, k, nan);
  }
  const Eigen::VectorXd resid = Y - X * law.beta;
  const double ybar = w.dot(Y) / w.sum();
  const double ss_tot = (w.array() * (Y.array() - ybar).square()).sum();
  law.r2 = ss_tot > 0 ? 1 - (w.array() * resid.array().square()).sum() / ss_tot : 1.0;
  for (Eigen::Index c = 0; c < k; ++c) {
    const double s = std::sqrt(law.cov(c, c));
    law.ols_se.push_back(s);
    law.coefs.push_back(t_interval(law.beta(c), s, law.dof, c == 0));
  }
  return law;
}

// ---- loss law ----

double loss_law_value(const std::vector<double>& t, double N, double D) {
  return std::exp(t[0]) + std::exp(t[1] - t[2] * std::log(N)) + std::exp(t[3] - t[4] * std::log(D));
}

namespace {

// Residuals whose squares sum to twice the Huber loss of log-prediction errors.
struct HuberResiduals {
  using Scalar = double;
  using InputType = Eigen::VectorXd;
  using ValueType = Eigen::VectorXd;
  using JacobianType = Eigen::MatrixXd;
  enum { InputsAtCompileTime = Eigen::Dynamic, ValuesAtCompileTime = Eigen::Dynamic };
  const std::vector<LawPoint>* pts;
  const std::vector<std::size_t>* rows;
  double delta;
  int inputs() const { return 5; }
  int values() const { return static_cast<int>(rows->size()); }
  int operator()(const Eigen::VectorXd& x, Eigen::VectorXd& f) const {
    const std::vector<double> t(x.data(), x.data() + 5);
    for (std::size_t i = 0; i < rows->size(); ++i) {
      const LawPoint& p = (*pts)[(*rows)[i]];
      const double u = std::log(loss_law_value(t, p.N, p.D)) - std::log(p.loss);
      const double a = std::fabs(u);
      f(static_cast<Eigen::Index>(i)) = a <= delta ? u : std::copysign(std::sqrt(2 * delta * a - delta * delta), u);
    }
    return 0;
  }
  // Analytic Jacobian: five times fewer evaluations than finite differences.
  int df(const Eigen::VectorXd& x, Eigen::MatrixXd& J) const {
    for (std::size_t i = 0; i < rows->size(); ++i) {
      const LawPoint& p = (*pts)[(*rows)[i]];
      const double ln_n = std::log(p.N), ln_d = std::log(p.D);
      const double e = std::exp(x(0)), a = std::exp(x(1) - x(2) * ln_n), b = std::exp(x(3) - x(4) * ln_d);
      const double pred = e + a + b;
      const double u = std::log(pred) - std::log(p.loss);
      const double au = std::fabs(u);
      const double dpsi = au <= delta ? 1.0 : delta / std::sqrt(2 * delta * au - delta * delta);
      const auto r = static_cast<Eigen::Index>(i);
      J(r, 0) = dpsi * e / pred;
      J(r, 1) = dpsi * a / pred;
      J(r, 2) = -dpsi * ln_n * a / pred;
      J(r, 3) = dpsi * b / pred;
      J(r, 4) = -dpsi * ln_d * b / pred;
    }
    return 0;
  }
};

double huber_objective(const std::vector<LawPoint>& pts, const std::vector<std::size_t>& rows, double delta,
                       const Eigen::VectorXd& x) {
  HuberResiduals f{&pts, &rows, delta};
  Eigen::VectorXd r(rows.size());
  f(x, r);
  return r.allFinite() ? 0.5 * r.squaredNorm() : std::numeric_limits<double>::infinity();
}

Eigen::VectorXd minimise_from(const std::vector<LawPoint>& pts, const std::vector<std::size_t>& rows, double delta,
                              Eigen::VectorXd x) {
  HuberResiduals f{&pts, &rows, delta};
  Eigen::LevenbergMarquardt<HuberResiduals> lm(f);
  lm.parameters.maxfev = 400;
  lm.minimize(x);
  return x;
}

}  // namespace

double LossLaw::predict(double N, double D) const { return loss_law_value(theta, N, D); }

Interval LossLaw::predict_interval(double N, double D) const {
  std::vector<double> s;
  for (const auto& t : boot) s.push_back(loss_law_value(t, N, D));
  return summarize(predict(N, D), std::move(s));
}

LossLaw fit_loss_law(const std::vector<LawPoint>& cells, const BootstrapOptions& boot) {
  LossLaw law;
  law.cells = cells.size();
  std::set<double> ns, ds;
  for (const auto& c : cells) ns.insert(c.N), ds.insert(c.D);
  if (cells.size() < 6 || ns.size() < 2 || ds.size() < 2) {
    law.note = "needs at least 6 cells over 2 model sizes and 2 token budgets (have " + std::to_string(cells.size()) +
               " cells, " + std::to_string(ns.size()) + " sizes, " + std::to_string(ds.size()) + " budgets)";
    return law;
  }
  // A term whose regressor barely varies cannot be separated from E.
  const double n_span = *ns.rbegin() / *ns.begin(), d_span = *ds.rbegin() / *ds.begin();
  if (n_span < kMinLawSpan || d_span < kMinLawSpan) {
    const bool n_short = n_span < kMinLawSpan;
    law.note = std::string("not determined: ") + (n_short ? "N" : "D") + " spans only a factor " +
               std::to_string(n_short ? n_span : d_span).substr(0, 5) + " over the cells, so " +
               (n_short ? "A and alpha" : "B and beta") + " cannot be separated from E";
    return law;
  }
  std::vector<std::size_t> all(cells.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  // Grid of starting points over (log E, log A, alpha, log B, beta), as in Chinchilla's
  // approach 3; Levenberg-Marquardt runs from the 12 best of them.
  std::vector<std::pair<double, Eigen::VectorXd>> starts;
  for (double e : {-1.0, -0.5, 0.0, 0.5, 1.0})
    for (double a : {0.0, 5.0, 10.0, 15.0, 20.0, 25.0})
      for (double al : {0.0, 0.5, 1.0, 1.5, 2.0})
        for (double b : {0.0, 5.0, 10.0, 15.0, 20.0, 25.0})
          for (double be : {0.0, 0.5, 1.0, 1.5, 2.0}) {
            Eigen::VectorXd x(5);
            x << e, a, al, b, be;
            starts.emplace_back(huber_objective(cells, all, law.huber_delta, x), x);
          }
  const std::size_t keep = std::min<std::size_t>(12, starts.size());
  std::partial_sort(starts.begin(), starts.begin() + static_cast<std::ptrdiff_t>(keep), starts.end(),
                    [](auto& a, auto& b) { return a.first < b.first; });
  Eigen::VectorXd best;
  double best_obj = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < keep; ++i) {
    const Eigen::VectorXd x = minimise_from(cells, all, law.huber_delta, starts[i].second);
    const double obj = huber_objective(cells, all, law.huber_delta, x);
    if (obj < best_obj) best_obj = obj, best = x;
  }
  if (!std::isfinite(best_obj)) {
    law.note = "no starting point converged";
    return law;
  }
  // Finite, plausible values only: exponents of published loss laws lie in 0.05-1.
  double min_loss = std::numeric_limits<double>::infinity();
  for (const auto& c : cells) min_loss = std::min(min_loss, c.loss);
  std::string implausible;
  if (!best.allFinite())
    implausible = "non-finite parameters";
  else if (!(best(2) > 0.01 && best(2) < 2.5) || !(best(4) > 0.01 && best(4) < 2.5))
    implausible =
        "exponents alpha = " + std::to_string(best(2)) + ", beta = " + std::to_string(best(4)) + " outside (0.01, 2.5)";
  else if (std::exp(best(0)) < 0.01 * min_loss)
    implausible = "the irreducible loss E went to 0";
  else if (best(1) > 200 || best(3) > 200)
    implausible = "coefficients A or B beyond e^200";
  if (!implausible.empty()) {
    law.note = "not determined: the fit did not converge to plausible values (" + implausible + ")";
    return law;
  }
  law.ok = true;
  law.theta.assign(best.data(), best.data() + 5);
  law.boot.assign(static_cast<std::size_t>(std::max(0, boot.resamples)), {});
  tbb::parallel_for(tbb::blocked_range<int>(0, boot.resamples), [&](const tbb::blocked_range<int>& range) {
    for (int r = range.begin(); r < range.end(); ++r) {
      const auto rows = bootstrap_indices(cells.size(), boot.seed ^ 0x10551a3ULL, r);
      const Eigen::VectorXd x = minimise_from(cells, rows, law.huber_delta, best);
      law.boot[static_cast<std::size_t>(r)].assign(x.data(), x.data() + 5);
    }
  });
  auto column = [&](int k) {
    std::vector<double> s;
    for (const auto& t : law.boot) s.push_back(t[static_cast<std::size_t>(k)]);
    return s;
  };
  law.E = summarize_log(law.theta[0], column(0));
  law.A = summarize_log(law.theta[1], column(1));
  law.alpha = summarize(law.theta[2], column(2));
  law.B = summarize_log(law.theta[3], column(3));
  law.beta = summarize(law.theta[4], column(4));
  return law;
}

}  // namespace hpsweep
