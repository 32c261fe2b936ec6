#pragma once
// The real proxy trainer (kind = mlp): a small pre-norm residual MLP trained with AdamW on an
// online synthetic classification task, in Eigen with its GEMMs on OpenBLAS, float32, one GEMM
// thread per trial unless `threads` asks for more.
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
// Parametrizations: every per-group value comes from transfer() (parametrization/rules.hpp,
// what `hpsweep transfer` prints) with the trial's [mlp] settings as the proxy — a base model of
// base_width x base_depth (d_ffn = round(ffn_mult * base_width)) with lr, wd = the trial's,
// init_std σ, eps, input_mult, output_mult, no weight decay on norm gains, a dense input layer —
// and the trial's width, depth and d_ffn as the target (mlp_transfer_table()). SP keeps every
// hyperparameter, so under SP each trial is its own proxy. Groups: input = input/embedding,
// hidden.w1 = hidden matrices, hidden.w2 = FFN down-projection, hidden.norm = norms and biases,
// final_norm = final norm, output = output/unembedding; the residual multiplier is the residual
// branches' (1 when the rules have none). What the network adds to the rules' values:
//   init std: σ means N(0, σ²/fan_in) at the proxy's shape (sp, mup): input σ/√d_in, hidden
//     σ/√width, FFN down σ/√d_ffn, output σ/√width, times the rules' init ratio; u-μP's unit init
//     times σ. Norm gains start at 1; the output at 0 when output_init = zero, or auto under mup.
//   forward multiplier: u-μP's ops apply 1/√fan_in of the trial's shape (1/√d_in, 1/√w, 1/√f)
//     and the readout 1/w.
//   Adam lr: u-μP's optimizer applies fan_in^-1/2 and depth^-1/2 at the proxy's shape (input
//     1/√d_in, hidden 1/(√base_width·√base_depth), FFN down 1/(√d_ffn·√base_depth), norms
//     1/√base_depth), which the rules carry to the trial's: η/(√w·√L) for the hidden matrices.
// Combinations transfer() has no rules for (depth_alpha under sp or umup, wd_width_rule under
// sp) are rejected. applied_hyperparameters() returns exactly what a trial applies.
//
// Determinism: init and data are seeded from the trial id (seeding = trial) or from the sweep
// seed and repeat index only (seeding = shared: common random numbers across the grid, so
// points of a cell differ only by their hyperparameters). Same trial, same binary, same CPU:
// bit-identical result. OpenBLAS's kernels and blocking depend on the CPU model and on the
// thread count, so another CPU model or another `threads` may differ in the last bits.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hpsweep/backends/backend.hpp"
#include "hpsweep/parametrization/rules.hpp"
#include "hpsweep/spec/backend_options.hpp"

namespace hpsweep {

enum class MlpActivation { Gelu, Relu };
enum class MlpSchedule { Cosine, Wsd, Constant };
enum class MlpWdMode { Coupled, Decoupled, L2 };
enum class MlpOutputInit { Auto, Zero, Normal };
enum class MlpSeeding { Trial, Shared };
enum class MlpFitLoss { Heldout, Curve };

const char* to_string(MlpSchedule s);
const char* to_string(MlpWdMode m);

// The [mlp] options, parsed. Defaults match mlp_backend_options() (spec/backend_options.hpp).
struct MlpSettings {
  // model
  std::int64_t width = 0;  // 0: derived from the trial's N
  std::int64_t depth = 4;
  double ffn_mult = 4;
  MlpActivation activation = MlpActivation::Gelu;
  // parametrization
  Parametrization parametrization = Parametrization::SP;
  double base_width = 128, base_depth = 4, depth_alpha = 0;  // base_width, base_depth: whole numbers
  double input_mult = 1, output_mult = 1, init_std = 1;
  MlpOutputInit output_init = MlpOutputInit::Auto;
  // optimizer
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, grad_clip = 0;
  MlpWdMode wd_mode = MlpWdMode::Coupled;
  WdRule wd_width_rule = WdRule::Unchanged;
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
  // GEMM threads of one trial; 0: auto (mlp_auto_threads()). Not part of the trial id, like the
  // CPU model: another thread count can change the last bits (OpenBLAS blocks the sums of a
  // threaded GEMM differently), a given count is deterministic.
  std::int64_t threads = 1;

  // Missing keys keep their defaults; throws InputError naming the key on a bad value.
  static MlpSettings from_options(const std::map<std::string, std::string>& options);
};

// Checks the options as a whole (through validate_backend_options()); throws InputError.
void validate_mlp_options(const std::map<std::string, std::string>& options);

struct MlpShape {
  std::int64_t d_in = 0, width = 0, ffn = 0, depth = 0, classes = 0;
  double params() const;                        // non-embedding: L*(2*w*f + w) + w
  double total_params() const;                  // + input and output projections
  double step_flops(std::int64_t batch) const;  // forward + backward GEMM FLOPs of one step
};
// The network a trial trains. Throws InputError when N asks for an impossible width.
MlpShape mlp_shape(const TrialPoint& p, const MlpSettings& s);

// The `hpsweep transfer` question a trial of `shape` answers (see the parametrization notes
// above): its per-group lr, wd, init, multipliers and eps are the table's target values.
TransferTable mlp_transfer_table(const MlpSettings& s, const MlpShape& shape, double lr, double wd);

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
  // Parts of train_seconds: the fresh batch (inputs, teacher, labels) and the AdamW update; the
  // rest is forward, loss and backward.
  double data_seconds = 0, update_seconds = 0;
  double flops_per_step = 0;  // student forward + backward GEMM FLOPs
};

class MlpBackend : public Backend {
 public:
  MlpBackend(MlpSettings settings, std::uint64_t sweep_seed);
  ~MlpBackend() override;
  TrialOutcome run(const Trial& trial) override;
  // threads = auto takes the CPUs the scheduler gave the trial ([resources] cpus), when given.
  TrialOutcome run_placed(const Trial& trial, const Placement& placement) override;
  void cancel() override { cancelled_ = true; }
  void note_trials_left(std::int64_t trials) override;  // mlp_set_trials_left

  const MlpSettings& settings() const { return s_; }
  double task_floor() const;  // teacher entropy on the held-out set (nats)
  const MlpRunStats& last_stats() const { return stats_; }
  // Coordinate check: trains `steps` steps of `trial` with the settings' schedule and returns,
  // per step (before its update), mean |h| of the input projection's output, of the residual
  // stream after each block, and of the logits (L + 2 values).
  std::vector<std::vector<double>> activation_trace(const Trial& trial, std::int64_t steps);

  struct Task;

 private:
  TrialOutcome train(const Trial& trial, std::vector<std::vector<double>>* trace, std::int64_t trace_steps,
                     int placed_cpus = 0);
  MlpSettings s_;
  std::uint64_t sweep_seed_;
  std::unique_ptr<Task> task_;
  std::atomic<bool> cancelled_{false};
  MlpRunStats stats_;
};

// threads = auto: the cores this process may run on (its CPU affinity) divided by the trials
// that can run at once on this host, at least 1 thread. Those are the hpsweep workers sharing the
// host (Open MPI's or Slurm's local task count, less one on the master's host, whose master
// sleeps while trials run; the worker threads of `hpsweep run` without MPI), or fewer when fewer
// trials are left: `trials_left` (0: unknown). The trials running at once never hold more GEMM
// threads than there are cores.
int mlp_auto_threads(std::int64_t trials_left = 0);
// The sweep's trials not yet finished, for threads = auto in this process: each trial the master
// sends carries its count (Backend::note_trials_left sets it, in worker threads and in the worker
// processes of an MPI run alike), and each mlp trial that ends in this process counts one down.
// 0: unknown.
void mlp_set_trials_left(std::int64_t trials);

// The GEMM library and the kernels it runs on this CPU, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ...;
// kernels: SkylakeX".
std::string mlp_gemm_library();
// The instruction set the trainer's elementwise kernels (activation, AdamW) run on this CPU:
// "AVX-512", "AVX2+FMA" or "SSE2" (one build carries all three).
std::string mlp_elementwise_isa();

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
