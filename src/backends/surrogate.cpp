#include "hpsweep/backends/surrogate.hpp"

#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <thread>

#include "hpsweep/trials/smoothing.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

SurrogateParams SurrogateParams::from_options(const std::map<std::string, std::string>& o) {
  SurrogateParams p;
  auto get = [&](const char* k, double& dst) {
    if (auto it = o.find(k); it != o.end()) dst = std::stod(it->second);
  };
  get("E", p.E);
  get("A", p.A);
  get("alpha", p.alpha);
  get("B", p.B);
  get("beta", p.beta);
  get("lr_coef", p.lr_coef);
  get("lr_n_exp", p.lr_n_exp);
  get("lr_d_exp", p.lr_d_exp);
  get("batch_coef", p.batch_coef);
  get("batch_d_exp", p.batch_d_exp);
  get("tau_coef", p.tau_coef);
  get("tau_exp", p.tau_exp);
  get("lr_curvature", p.lr_curvature);
  get("lr_high_asymmetry", p.lr_high_asymmetry);
  get("batch_curvature", p.batch_curvature);
  get("wd_curvature", p.wd_curvature);
  get("diverge_factor", p.diverge_factor);
  get("noise", p.noise);
  get("fail_probability", p.fail_probability);
  get("sleep_per_pflop", p.sleep_per_pflop);
  double points = p.curve_points;
  get("curve_points", points);
  p.curve_points = static_cast<int>(points);
  return p;
}

double SurrogateParams::optimal_lr(double n, double d) const {
  return lr_coef * std::pow(n, lr_n_exp) * std::pow(d, lr_d_exp);
}
double SurrogateParams::optimal_batch_tokens(double d) const { return batch_coef * std::pow(d, batch_d_exp); }
double SurrogateParams::optimal_tau(double n, double d) const { return tau_coef * std::pow(d / n, tau_exp); }
double SurrogateParams::optimal_wd(double n, double d, double lr, double batch_tokens) const {
  return batch_tokens / (lr * d * optimal_tau(n, d));
}

namespace {
struct Penalty {
  double value;
  bool diverges;
};

Penalty penalty(const SurrogateParams& p, double n, double d, double lr, double bt, double wd) {
  const double lr_opt = p.optimal_lr(n, d), b_opt = p.optimal_batch_tokens(d);
  const double x = std::log(lr / lr_opt);
  const double y = std::log(bt / b_opt);
  const double lr_term = p.lr_curvature * x * x * (x > 0 ? 1.0 + p.lr_high_asymmetry : 1.0);
  const double b_term = p.batch_curvature * y * y;
  // tau = B/(lr*wd*D); wd = 0 means tau = inf: the penalty saturates instead of exploding.
  double wd_term = 0;
  constexpr double kSaturation = 9.0;  // (ln tau/tau*)^2 never counts for more than 3 e-folds
  if (wd > 0) {
    const double z = std::log(bt / (lr * wd * d) / p.optimal_tau(n, d));
    wd_term = p.wd_curvature * z * z / (1.0 + z * z / kSaturation);
  } else {
    wd_term = p.wd_curvature * kSaturation;
  }
  const double lr_div = p.diverge_factor * lr_opt * std::sqrt(bt / b_opt);
  return Penalty{lr_term + b_term + wd_term, lr > lr_div};
}

// Box-Muller over mt19937_64: the standard distributions are implementation-defined, this is not.
class NormalStream {
 public:
  explicit NormalStream(std::uint64_t seed) : rng_(seed) {}
  double next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = (static_cast<double>(rng_() >> 11) + 0.5) * 0x1.0p-53;
    const double u2 = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2.0 * M_PI * u2);
    has_spare_ = true;
    return r * std::cos(2.0 * M_PI * u2);
  }
  double uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

 private:
  std::mt19937_64 rng_;
  double spare_ = 0;
  bool has_spare_ = false;
};

constexpr double kInitialLoss = 10.82;  // ln(50257): a GPT-2-vocabulary model at initialisation
}  // namespace

double SurrogateParams::expected_loss(double n, double d, double lr, double bt, double wd) const {
  const Penalty pen = penalty(*this, n, d, lr, bt, wd);
  if (pen.diverges) return std::numeric_limits<double>::infinity();
  return (E + A / std::pow(n, alpha) + B / std::pow(d, beta)) * (1.0 + pen.value);
}

TrialOutcome SurrogateBackend::run(const Trial& trial) {
  const TrialPoint& pt = trial.point;
  const auto started = std::chrono::steady_clock::now();
  NormalStream rng(trial.id);
  if (p_.fail_probability > 0 && rng.uniform() < p_.fail_probability)
    throw Error("surrogate: simulated failure (fail_probability = " + format_short(p_.fail_probability) + ")");

  const double n = pt.params, d = pt.tokens, bt = pt.batch_tokens();
  const Penalty pen = penalty(p_, n, d, pt.lr, bt, pt.wd);
  const std::int64_t steps = pt.steps();
  const double run_noise = 1.0 + p_.noise * rng.next();

  TrialOutcome out;
  out.steps = steps;
  const int points = static_cast<int>(std::min<std::int64_t>(p_.curve_points, steps));
  const std::int64_t diverge_at = pen.diverges ? std::max<std::int64_t>(1, steps / 3) : steps + 1;
  double blowup = 1.0;
  std::int64_t prev = 0;
  for (int i = 1; i <= points; ++i) {
    const std::int64_t s = std::max<std::int64_t>(prev + 1, (steps * i) / points);
    prev = s;
    const double seen = static_cast<double>(s) * bt;
    double l = std::min(kInitialLoss, p_.E + p_.A / std::pow(n, p_.alpha) + p_.B / std::pow(seen, p_.beta));
    l *= (1.0 + pen.value) * run_noise * (1.0 + 3.0 * p_.noise * rng.next());
    if (s >= diverge_at) {
      blowup *= 4.0;
      l *= blowup;
      if (l > 1e6) l = std::numeric_limits<double>::infinity();
    }
    out.curve.step.push_back(s);
    out.curve.loss.push_back(l);
    if (!std::isfinite(l)) break;
  }
  if (points == 0) {
    out.final_loss = p_.expected_loss(n, d, pt.lr, bt, pt.wd) * run_noise;
    out.smooth_loss = out.final_loss;
  } else {
    out.final_loss = out.curve.loss.back();
    out.smooth_loss =
        std::isfinite(out.final_loss) ? smoothed_final_loss(out.curve.step, out.curve.loss) : out.final_loss;
  }
  if (pen.diverges || !std::isfinite(out.final_loss)) {
    out.state = TrialState::Diverged;
    out.error = "loss diverged: lr " + format_short(pt.lr) + " is above the stability limit " +
                format_short(p_.diverge_factor * p_.optimal_lr(n, d) * std::sqrt(bt / p_.optimal_batch_tokens(d)));
  }
  if (p_.sleep_per_pflop > 0) {
    const auto target = std::chrono::duration<double>(p_.sleep_per_pflop * pt.compute() / 1e15);
    std::this_thread::sleep_until(started + std::chrono::duration_cast<std::chrono::steady_clock::duration>(target));
  }
  return out;
}

}  // namespace hpsweep
