#pragma once
// Power laws fitted by least squares in log space, with bootstrap intervals, and the loss law
// L(N, D) = E + A/N^alpha + B/D^beta fitted with a Huber loss on log L.
#include <Eigen/Dense>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace hpsweep {

struct OlsResult {
  Eigen::VectorXd beta, se;
  double r2 = 0;
  std::size_t n = 0;
};
OlsResult ols(const Eigen::MatrixXd& X, const Eigen::VectorXd& y);

// A bootstrap summary: the full-data estimate, and mean, median, 2.5% and 97.5% of the resamples.
// `geometric`: summarised in log space, so `mean` is the geometric mean. `analytic`: a t interval
// from the weighted fit (no resamples: mean and median equal the estimate).
struct Interval {
  double estimate = 0, mean = 0, median = 0, lo = 0, hi = 0;
  bool geometric = false, analytic = false;
};
Interval summarize(double estimate, std::vector<double> samples);
// The same for a positive quantity estimated in log space: statistics of the log, exponentiated
// (the Step Law convention for intercepts).
Interval summarize_log(double log_estimate, std::vector<double> log_samples);
// estimate +- t_{0.975, dof} * se; exponentiated when `log_scale`.
Interval t_interval(double estimate, double se, double dof, bool log_scale);
// Two-sided 95% quantile of Student's t (normal for dof <= 0 or infinite).
double t_quantile_975(double dof);

struct BootstrapOptions {
  int resamples = 1000;
  std::uint64_t seed = 0;
  bool by_cell = false;  // resample whole cells instead of points
};

// Seeded per resample index, so results are bit-identical whatever the number of threads.
std::vector<std::size_t> bootstrap_indices(std::size_t n, std::uint64_t seed, int resample);

struct LawPoint {
  double N = 0, D = 0, lr = 0, B = 0, wd = 0, loss = 0;
  std::size_t cell = 0;
  // Standard errors of ln lr and ln B of a per-cell optimum estimate (NaN: not estimated).
  double lr_se_log = std::numeric_limits<double>::quiet_NaN(), batch_se_log = std::numeric_limits<double>::quiet_NaN();
};

// log y = beta0 + sum_k beta_k * log x_k
struct PowerLaw {
  std::string name;     // lr | batch | lr_compute | batch_compute | tau
  std::string formula;  // human-readable
  std::vector<std::string> coef_names;
  std::vector<Interval> coefs;  // coefs[0] is the multiplier exp(beta0)
  std::vector<double> ols_se;   // standard errors of the betas from OLS
  double r2 = 0;
  std::size_t points = 0, cells = 0;
  Eigen::VectorXd beta;
  std::vector<Eigen::VectorXd> boot;                            // betas of every resample
  std::function<Eigen::VectorXd(double N, double D)> features;  // [1, log x_1, ...]
  // Weighted fit (fit_weighted_law): covariance of beta, residual dof (cells - parameters) and
  // the variance of the cells' true optima about the law (tau^2, in log units squared).
  bool weighted = false;
  Eigen::MatrixXd cov;
  double dof = 0, scatter_var = 0;
  // Variance of the cell-level residuals about the law (bootstrap fits): scatter for prediction.
  double cell_residual_var = 0;

  double predict(double N, double D) const;
  // Confidence interval of the law's value at (N, D): where the fitted law itself may lie.
  Interval predict_interval(double N, double D) const;
  // Prediction interval of the optimum of a new cell at (N, D): the law's uncertainty plus the
  // scatter of cell optima about the law.
  Interval prediction_interval(double N, double D) const;
  // Standard errors of ln y at (N, D): of the law, and of a new cell's optimum.
  double log_se(double N, double D, bool with_scatter) const;
};

// Weighted least squares over per-cell optima (one point per cell, each with its standard error
// se(point) of ln y): weights 1/(se^2 + tau^2), tau^2 (scatter about the law) by Paule-Mandel,
// covariance scaled by the weighted residuals (Knapp-Hartung) and t intervals with
// cells - parameters degrees of freedom. Points without a finite se get the median se.
PowerLaw fit_weighted_law(const std::string& name, const std::string& formula, std::vector<std::string> coef_names,
                          const std::vector<LawPoint>& points, const std::function<double(const LawPoint&)>& y,
                          const std::function<double(const LawPoint&)>& se,
                          std::function<Eigen::VectorXd(double, double)> features);

// y(point) is the quantity (lr, B, tau); features(N, D) returns [1, log x...].
PowerLaw fit_power_law(const std::string& name, const std::string& formula, std::vector<std::string> coef_names,
                       const std::vector<LawPoint>& points, const std::function<double(const LawPoint&)>& y,
                       std::function<Eigen::VectorXd(double, double)> features, const BootstrapOptions& boot);

// A law term needs its regressor to span at least this factor over the cells.
inline constexpr double kMinLawSpan = 1.5;

struct LossLaw {
  bool ok = false;
  std::string note;
  Interval E, A, alpha, B, beta;
  std::vector<double> theta;  // log E, log A, alpha, log B, beta
  std::vector<std::vector<double>> boot;
  std::size_t cells = 0;
  double huber_delta = 1e-3;
  double predict(double N, double D) const;
  Interval predict_interval(double N, double D) const;
};

// Per-cell best losses (N, D, L). The law is reported as not determined (ok = false, with the
// reason) when N or D barely varies, or the fit lands on implausible values. Multi-start Levenberg-Marquardt on the
// Huber loss; bootstrap over cells starting from the full-data optimum.
LossLaw fit_loss_law(const std::vector<LawPoint>& cell_best, const BootstrapOptions& boot);
double loss_law_value(const std::vector<double>& theta, double N, double D);

}  // namespace hpsweep
