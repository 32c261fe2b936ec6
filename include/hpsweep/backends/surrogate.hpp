#pragma once
// The surrogate proxy: a simulated training run with a known ground truth.
//   L = (E + A/N^alpha + B0/D^beta) * (1 + penalty) * (1 + noise)
// with penalties convex in log(lr/lr*), log(B/B*) and log(tau/tau*), where
//   lr*(N, D) = lr_coef * N^lr_n_exp * D^lr_d_exp        (Step Law defaults)
//   B*(D)     = batch_coef * D^batch_d_exp                (tokens)
//   tau       = B / (lr * wd * D),  tau* = tau_coef * (D/N)^tau_exp   (AdamW timescale)
// Too high a learning rate costs more than too low (lr_high_asymmetry) and diverges past
// diverge_factor * lr* * sqrt(B/B*). Noise is seeded by the trial id: same trial, same loss.
#include <map>
#include <string>

#include "hpsweep/backends/backend.hpp"

namespace hpsweep {

struct SurrogateParams {
  double E = 1.69, A = 406.4, alpha = 0.34, B = 410.7, beta = 0.28;
  double lr_coef = 1.79, lr_n_exp = -0.713, lr_d_exp = 0.307;
  double batch_coef = 0.58, batch_d_exp = 0.571;
  double tau_coef = 1.0, tau_exp = -0.53;
  double lr_curvature = 0.01, lr_high_asymmetry = 1.0, batch_curvature = 0.006, wd_curvature = 0.004;
  double diverge_factor = 8.0;
  double noise = 0.001;
  double fail_probability = 0.0;
  int curve_points = 64;
  double sleep_per_pflop = 0.0;  // seconds of wall time per 1e15 FLOPs (6ND), to exercise scheduling

  static SurrogateParams from_options(const std::map<std::string, std::string>& options);

  double optimal_lr(double n, double d) const;
  double optimal_batch_tokens(double d) const;
  double optimal_tau(double n, double d) const;
  // Weight decay that puts tau at its optimum for the given lr and batch.
  double optimal_wd(double n, double d, double lr, double batch_tokens) const;
  // Noise-free expected final loss; +inf past the divergence threshold.
  double expected_loss(double n, double d, double lr, double batch_tokens, double wd) const;
};

class SurrogateBackend : public Backend {
 public:
  explicit SurrogateBackend(SurrogateParams p) : p_(p) {}
  TrialOutcome run(const Trial& trial) override;
  const SurrogateParams& params() const { return p_; }

 private:
  SurrogateParams p_;
};

}  // namespace hpsweep
