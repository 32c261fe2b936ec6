#pragma once
// The real proxy trainer (kind = mlp): a small pre-norm residual MLP trained with AdamW on an
// online synthetic classification task, in Eigen, single-threaded, float32.
//
// Model (width w, depth L, FFN width f = round(ffn_mult * w)):
//   h_0     = input_mult' * W_in x                                  (d_in -> w, no bias)
//   h_{l+1} = h_l + res * W2' act(W1' RMSNorm_g(h_l))               (L blocks, w -> f -> w)
//   logits  = output_mult' * W_out RMSNorm_g(h_L)                   (w -> classes)
// act = GELU (tanh form, as torch GELU(approximate="tanh")) or ReLU; RMSNorm with a gain and
// eps 1e-6; the primes are the parametrization's forward multipliers, res = m_L^-depth_alpha.
// Width: option `width`, or, when width = 0 (default), derived from the trial's N at fixed
// depth: N counts non-embedding parameters, L*(2*w*f + w) + w ~ 2*ffn_mult*L*w^2, so
// w = sqrt(N / (2 ffn_mult L)) rounded to a multiple of 8 (>= 8).
//
// Task (shared by every trial of a sweep: seeded by the sweep seed only): x ~ N(0, diag(s)),
// s_i ∝ (i+1)^-spectrum_decay normalised to mean 1; labels y ~ softmax(T2 tanh(T1 x) / teacher_temp)
// with a fixed random teacher (T1 ~ N(0, 1/d_in), T2 ~ N(0, 1/teacher_width)). The loss floor
// is the teacher's mean entropy (task_floor()). Fresh samples every step; one "sequence" of
// the grid is one sample: batch = TrialPoint.batch samples per step and
// steps = min(ceil(D / (batch * seq_len)), max_steps) (the trial's own step count; put
// seq_len = 1 in [scales] to make D count samples).
//
// Losses. Training: cross-entropy of the sampled labels. Logged curve: the expected
// cross-entropy against the teacher's probabilities (soft targets, the same expectation with
// far less noise) on each step's fresh batch before the update, averaged over the steps
// between two logged points (curve_points points). final_loss: that expected cross-entropy on
// the fixed held-out set (eval_size samples, the same for every trial, so comparisons between
// trials are paired). smooth_loss (what `hpsweep fit` uses): fit_loss = heldout (default) puts
// final_loss there; fit_loss = curve puts the Step-Law Gaussian smoothing of the curve.
// DIVERGED: a step's loss is non-finite or above diverge_factor x the first step's loss (the
// run stops there; steps = the steps run), or the held-out loss is non-finite or above it.
//
// Optimizer: Adam(beta1, beta2, eps) with bias correction, optional global-norm clipping, and
// weight decay wd_mode = coupled (PyTorch AdamW: p -= lr_t * wd * p), decoupled (p -= s_t * wd * p,
// s_t the schedule factor: wd is a per-step fraction, independent of lr) or l2 (wd * p added to
// the gradient). Norm gains are never decayed. Schedule: linear warmup over warmup_frac of the
// steps, then cosine to final_lr_frac (cosine), or constant then a cooldown over the last
// decay_frac of the steps to final_lr_frac: 1 - sqrt shape (wsd) or linear (constant).
//
// Parametrizations (η = trial lr, λ = trial wd, ε = eps, σ = init_std, m = w / base_width for
// W1 and the readout, m_f = f / (ffn_mult * base_width) for W2, m_L = L / base_depth,
// α = depth_alpha, r_λ = wd width rule factor: 1 / m / sqrt(m) for none / linear / sqrt):
//   group      | sp                   | mup                                   | umup
//   input      | σ/√d_in, ×α_in, η    | σ/√d_in, ×α_in, η, ε/m                | σ, ×α_in/√d_in, η/√d_in
//   hidden W1  | σ/√w, η·dl, ε·de     | σ/√w, η·dl/m, ε·de/m                  | σ, ×1/√w, η/(√w·√L)
//   hidden W2  | σ/√f, η·dl, ε·de     | σ/√f, η·dl/m_f, ε·de/m_f              | σ, ×1/√f, η/(√f·√L)
//   block gain | 1, η·dl, wd 0        | 1, η·dl, wd 0                         | 1, η/√L, wd 0
//   final gain | 1, η, wd 0           | 1, η, wd 0                            | 1, η, wd 0
//   output     | σ/√w, ×α_out, η      | 0 (auto) or σ/√base_width, ×α_out/m, η, ε/m | σ, ×α_out/w, η
// (entries: init std, forward multiplier, Adam lr, eps when not ε)
// hidden weight decay λ·r_λ (all parametrizations), input/output λ; dl = m_L^(α-1) and
// de = m_L^-α when α > 0 (CompleteP / Depth-μP rules, sp and mup), else 1. umup uses its own
// depth rule (residual-branch lr × L^-1/2, absolute L). res = m_L^-α everywhere.
// applied_hyperparameters() returns exactly what a trial applies.
//
// Determinism: init and data are seeded from the trial id (seeding = trial) or from the sweep
// seed and repeat index only (seeding = shared: common random numbers across the grid, so
// points of a cell differ only by their hyperparameters). Same trial, same binary, same CPU:
// bit-identical result. Eigen's GEMM blocking depends on the CPU's cache sizes, so two
// different CPU models may differ in the last bits.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hpsweep/backends/backend.hpp"
#include "hpsweep/backends/registry.hpp"

namespace hpsweep {

enum class MlpParametrization { SP, MuP, UMuP };
enum class MlpActivation { Gelu, Relu };
enum class MlpSchedule { Cosine, Wsd, Constant };
enum class MlpWdMode { Coupled, Decoupled, L2 };
enum class MlpWdWidthRule { None, Linear, Sqrt };
enum class MlpOutputInit { Auto, Zero, Normal };
enum class MlpSeeding { Trial, Shared };
enum class MlpFitLoss { Heldout, Curve };

const char* to_string(MlpParametrization p);
const char* to_string(MlpSchedule s);
const char* to_string(MlpWdMode m);
const char* to_string(MlpWdWidthRule r);

// The [mlp] options, parsed. Defaults match mlp_backend_options().
struct MlpSettings {
  // model
  std::int64_t width = 0;  // 0: derived from the trial's N
  std::int64_t depth = 4;
  double ffn_mult = 4;
  MlpActivation activation = MlpActivation::Gelu;
  // parametrization
  MlpParametrization parametrization = MlpParametrization::SP;
  double base_width = 128, base_depth = 4, depth_alpha = 0;
  double input_mult = 1, output_mult = 1, init_std = 1;
  MlpOutputInit output_init = MlpOutputInit::Auto;
  // optimizer
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, grad_clip = 0;
  MlpWdMode wd_mode = MlpWdMode::Coupled;
  MlpWdWidthRule wd_width_rule = MlpWdWidthRule::None;
  // schedule
  MlpSchedule schedule = MlpSchedule::Cosine;
  double warmup_frac = 0.05, decay_frac = 0.2, final_lr_frac = 0.1;
  // task
  std::int64_t d_in = 64, classes = 64, teacher_width = 256, eval_size = 4096;
  double spectrum_decay = 1, teacher_temp = 0.25;
  // run
  std::int64_t max_steps = 100000, curve_points = 64;
  double diverge_factor = 3;
  MlpSeeding seeding = MlpSeeding::Trial;
  MlpFitLoss fit_loss = MlpFitLoss::Heldout;

  // Missing keys keep their defaults; throws InputError naming the key on a bad value.
  static MlpSettings from_options(const std::map<std::string, std::string>& options);
};

// The [mlp] section: keys, defaults (canonical text), affects_result, help, text flag.
const std::vector<BackendOption>& mlp_backend_options();
// Checks the options as a whole (the registry's validate hook); throws InputError.
void validate_mlp_options(const std::map<std::string, std::string>& options);

struct MlpShape {
  std::int64_t d_in = 0, width = 0, ffn = 0, depth = 0, classes = 0;
  double params() const;                        // non-embedding: L*(2*w*f + w) + w
  double total_params() const;                  // + input and output projections
  double step_flops(std::int64_t batch) const;  // forward + backward GEMM FLOPs of one step
};
// The network a trial trains. Throws InputError when N asks for an impossible width.
MlpShape mlp_shape(const TrialPoint& p, const MlpSettings& s);

// Schedule factor applied to every group's peak lr at step (1-based) of steps.
double mlp_lr_factor(const MlpSettings& s, std::int64_t step, std::int64_t steps);

// What one parameter group of a trial actually gets.
struct AppliedGroup {
  std::string name;  // input, hidden.w1, hidden.w2, hidden.norm, final_norm, output
  std::int64_t tensors = 0;
  std::int64_t params = 0;
  double init_mean = 0;   // 1 for norm gains
  double init_std = 0;    // 0: constant (zero or one) init
  double multiplier = 1;  // forward multiplier (residual multiplier not included)
  double lr = 0;          // peak learning rate (times mlp_lr_factor at each step)
  double wd = 0;          // weight decay as applied (see wd_mode)
  double eps = 0;         // Adam epsilon
};
std::vector<AppliedGroup> applied_hyperparameters(const Trial& trial,
                                                  const std::map<std::string, std::string>& options);
std::vector<AppliedGroup> applied_hyperparameters(const Trial& trial, const MlpSettings& s);
// The same as one JSON object: shape, steps, schedule (warmup, decay horizon, final lr), wd
// mode and width rule, residual multiplier and the groups. For storing with the trial.
std::string applied_hyperparameters_json(const Trial& trial, const std::map<std::string, std::string>& options);
std::string applied_hyperparameters_json(const Trial& trial, const MlpSettings& s);

// Timings of the last run() (not part of the result).
struct MlpRunStats {
  std::int64_t steps = 0;
  double setup_seconds = 0, train_seconds = 0, eval_seconds = 0;
  double flops_per_step = 0;  // student forward + backward GEMM FLOPs
};

class MlpBackend : public Backend {
 public:
  MlpBackend(MlpSettings settings, std::uint64_t sweep_seed);
  ~MlpBackend() override;
  TrialOutcome run(const Trial& trial) override;

  const MlpSettings& settings() const { return s_; }
  double task_floor() const;  // teacher entropy on the held-out set (nats)
  const MlpRunStats& last_stats() const { return stats_; }
  // Coordinate check: trains `steps` steps of `trial` with the settings' schedule and returns,
  // per step (before its update), mean |h| of the input projection's output, of the residual
  // stream after each block, and of the logits (L + 2 values).
  std::vector<std::vector<double>> activation_trace(const Trial& trial, std::int64_t steps);

  struct Task;

 private:
  TrialOutcome train(const Trial& trial, std::vector<std::vector<double>>* trace, std::int64_t trace_steps);
  MlpSettings s_;
  std::uint64_t sweep_seed_;
  std::unique_ptr<Task> task_;
  MlpRunStats stats_;
};

// `sweep_seed`: the job's [sweep] seed (seeds the task; trial ids already include it).
std::unique_ptr<Backend> make_mlp_backend(const std::map<std::string, std::string>& options,
                                          std::uint64_t sweep_seed = 0);

// Double-precision access to the network, for gradient checks and coordinate checks.
class MlpProbe {
 public:
  MlpProbe(const MlpSettings& s, const MlpShape& shape, std::uint64_t seed);
  ~MlpProbe();
  MlpProbe(const MlpProbe&) = delete;
  MlpProbe& operator=(const MlpProbe&) = delete;

  struct Tensor {
    std::string name;   // input, block<l>.w1, block<l>.w2, block<l>.norm, final_norm, output
    std::string group;  // as AppliedGroup::name
    std::size_t size;
  };
  const std::vector<Tensor>& tensors() const;
  double& value(std::size_t tensor, std::size_t index);
  double gradient(std::size_t tensor, std::size_t index) const;
  // Mean cross-entropy of `labels` given inputs x (d_in x n, column-major); fills the
  // gradients of every tensor when asked.
  double loss(const std::vector<double>& x, const std::vector<int>& labels, bool gradients);
  // After loss(): mean |h| of the residual stream after each block (L values) and of the logits.
  std::vector<double> mean_abs_activations() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hpsweep
