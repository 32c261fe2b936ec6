// Training: the schedule, the task shared by a sweep's trials, the AdamW loop and the held-out loss.
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <thread>

#include "backends/mlp/network.hpp"
#include "hpsweep/trials/smoothing.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

using namespace mlp_detail;

// ---------------------------------------------------------------------------------------------
// Schedule
// ---------------------------------------------------------------------------------------------

double mlp_lr_factor(const MlpSettings& s, std::int64_t step, std::int64_t steps) {
  const double t = static_cast<double>(step), T = static_cast<double>(std::max<std::int64_t>(1, steps));
  const double warm = std::round(s.warmup_frac * T);
  if (t <= warm) return t / warm;
  const double f = s.final_lr_frac;
  if (s.schedule == MlpSchedule::Cosine) {
    const double progress = (t - warm) / std::max(1.0, T - warm);
    return f + (1.0 - f) * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
  }
  const double decay = std::round(s.decay_frac * T);
  const double start = T - decay;
  if (decay <= 0 || t <= start) return 1.0;
  const double progress = std::min(1.0, (t - start) / decay);
  return s.schedule == MlpSchedule::Wsd ? f + (1.0 - f) * (1.0 - std::sqrt(progress))
                                        : f + (1.0 - f) * (1.0 - progress);
}

// ---------------------------------------------------------------------------------------------
// The task: teacher, input spectrum and held-out set, shared by every trial of the sweep.
// ---------------------------------------------------------------------------------------------

struct MlpBackend::Task {
  MlpSettings s;
  Eigen::VectorXf sqrt_spectrum;  // d_in
  MatF t1, t2;                    // teacher: teacher_width x d_in, classes x teacher_width
  MatF eval_x, eval_q;            // d_in x E inputs, classes x E teacher probabilities
  double floor = 0;               // mean teacher entropy on the held-out set

  Task(const MlpSettings& settings, std::uint64_t sweep_seed) : s(settings) {
    const Index d = s.d_in, tw = s.teacher_width, c = s.classes;
    Eigen::ArrayXd spec(d);
    for (Index i = 0; i < d; ++i) spec[i] = std::pow(static_cast<double>(i + 1), -s.spectrum_decay);
    spec *= static_cast<double>(d) / spec.sum();
    sqrt_spectrum = spec.sqrt().cast<float>().matrix();
    NormalSource trng(mix(sweep_seed, 0x7EAC4E2ull));
    t1.resize(tw, d);
    t2.resize(c, tw);
    trng.fill(t1.data(), t1.size());
    trng.fill(t2.data(), t2.size());
    t1 *= static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
    t2 *= static_cast<float>(1.0 / (std::sqrt(static_cast<double>(tw)) * s.teacher_temp));

    NormalSource erng(mix(sweep_seed, 0xE7A1ull));
    const Index e = s.eval_size;
    eval_x.resize(d, e);
    eval_q.resize(c, e);
    erng.fill(eval_x.data(), eval_x.size());
    eval_x = sqrt_spectrum.asDiagonal() * eval_x;
    MatF h(tw, e), z(c, e);
    RowF m(e), lse(e);
    teacher(eval_x, h, z, eval_q, m, lse, e);
    // entropy = lse - sum q z
    floor = ((lse.array() - (eval_q.array() * z.array()).colwise().sum()).cast<double>()).mean();
  }

  // q = teacher probabilities of inputs x (d_in x n); h, z, m, lse are scratch.
  template <class X, class H, class Z, class Q, class R>
  void teacher(const X& x, H& h, Z& z, Q& q, R& m, R& lse, Index n) const {
    product(1.0f, t1, false, x.leftCols(n), false, 0.0f, h.leftCols(n));
    h.leftCols(n).array() = h.leftCols(n).array().tanh();
    product(1.0f, t2, false, h.leftCols(n), false, 0.0f, z.leftCols(n));
    softmax_columns(z, q, m, lse, n);
  }
};

namespace {

// MlpBackend objects alive in this process: one per worker thread (`hpsweep run --workers`).
std::atomic<int> live_backends{0};
// The sweep's trials not yet finished, as this process knows them (0: unknown).
std::atomic<std::int64_t> trials_left_here{0};

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return *end == 0 && x >= 0 && x < (1 << 20) ? static_cast<int>(x) : fallback;
}

// Counts a trial that ends in this process off trials_left_here (never below 1: the count is a
// bound, and 0 would read as unknown).
struct TrialEndCount {
  ~TrialEndCount() {
    std::int64_t left = trials_left_here.load();
    while (left > 1 && !trials_left_here.compare_exchange_weak(left, left - 1)) {
    }
  }
};

}  // namespace

void mlp_set_trials_left(std::int64_t trials) { trials_left_here = std::max<std::int64_t>(0, trials); }

void MlpBackend::note_trials_left(std::int64_t trials) { mlp_set_trials_left(trials); }

int mlp_auto_threads(std::int64_t trials_left) {
  int cores = 0;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cores = CPU_COUNT(&set);
  if (cores < 1) cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int workers = std::max(1, live_backends.load());
  const int local = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", env_int("SLURM_STEP_TASKS_PER_NODE", 0));
  if (local > 0) {
    // The master is world rank 0; with the default by-slot mapping it shares the first host.
    const int rank = env_int("OMPI_COMM_WORLD_RANK", env_int("SLURM_PROCID", -1));
    const int local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", env_int("SLURM_LOCALID", -1));
    const bool master_here = rank >= 0 && rank == local_rank;
    workers = std::max(1, local - (master_here && local > 1 ? 1 : 0));
  }
  // Trials running at once on this host: at most one per worker, and at most the trials left.
  std::int64_t at_once = workers;
  const std::int64_t here = trials_left_here.load();
  for (std::int64_t bound : {trials_left, here})
    if (bound > 0) at_once = std::min(at_once, bound);
  return std::max(1, static_cast<int>(cores / std::max<std::int64_t>(1, at_once)));
}

MlpBackend::MlpBackend(MlpSettings settings, std::uint64_t sweep_seed)
    : s_(settings), sweep_seed_(sweep_seed), task_(std::make_unique<Task>(settings, sweep_seed)) {
  ++live_backends;
}
MlpBackend::~MlpBackend() { --live_backends; }
double MlpBackend::task_floor() const { return task_->floor; }

std::unique_ptr<Backend> make_mlp_backend(const std::map<std::string, std::string>& options, std::uint64_t sweep_seed) {
  return std::make_unique<MlpBackend>(MlpSettings::from_options(options), sweep_seed);
}

// ---------------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------------

namespace {

struct AdamState {
  Net<float>::View m, v;
};

// Mean expected cross-entropy of logits z against teacher probabilities q over n columns, given
// lse (log-sum-exp of z per column).
template <class Z, class Q, class R>
double soft_cross_entropy(const Z& z, const Q& q, const R& lse, Index n) {
  const double total = (lse.head(n).array() - (q.leftCols(n).array() * z.leftCols(n).array()).colwise().sum())
                           .template cast<double>()
                           .sum();
  return total / static_cast<double>(n);
}

}  // namespace

TrialOutcome MlpBackend::run(const Trial& trial) {
  const TrialEndCount count;
  return train(trial, nullptr, 0);
}

TrialOutcome MlpBackend::run_placed(const Trial& trial, const Placement& placement) {
  const TrialEndCount count;
  return train(trial, nullptr, 0, placement.cpus);
}

std::vector<std::vector<double>> MlpBackend::activation_trace(const Trial& trial, std::int64_t steps) {
  std::vector<std::vector<double>> trace;
  train(trial, &trace, steps);
  return trace;
}

TrialOutcome MlpBackend::train(const Trial& trial, std::vector<std::vector<double>>* trace, std::int64_t trace_steps,
                               int placed_cpus) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const TrialPoint& pt = trial.point;
  const MlpShape sh = mlp_shape(pt, s_);
  const std::int64_t steps = trace ? trace_steps : planned_steps(pt, s_);
  const Index B = static_cast<Index>(pt.batch);
  if (B > (1 << 20)) throw InputError("mlp: batch " + std::to_string(B) + " samples is too large (> 2^20)");
  const Index C = sh.classes, D = sh.d_in, TW = s_.teacher_width;
  const Index E = s_.eval_size;
  const Index cols = std::max<Index>(B, std::min<Index>(E, 256));  // eval runs in chunks of cols

  const std::uint64_t base = s_.seeding == MlpSeeding::Trial
                                 ? trial.id
                                 : mix(sweep_seed_, 0x5EED0000ull + static_cast<std::uint64_t>(pt.repeat));
  NormalSource init_rng(mix(base, 1)), data_rng(mix(base, 2));
  set_gemm_threads(s_.threads > 0 ? static_cast<int>(s_.threads) : placed_cpus > 0 ? placed_cpus : mlp_auto_threads());

  // Everything the step loop touches is allocated here, once.
  std::unique_ptr<Net<float>> net_ptr;
  Buffer<float> adam_memory;
  std::vector<AdamState> adam;
  MatF x, th, tz, q, p;
  RowF m, lse;
  try {
    // Without clipping each tensor is updated inside the backward pass: blocks share their
    // gradient buffers.
    net_ptr = std::make_unique<Net<float>>(s_, sh, cols, s_.grad_clip <= 0);
    // Moments of every tensor in one buffer (zeroed), as the network's own.
    auto carve = [&](Buffer<float>& b) {
      adam.clear();
      for (const auto& t : net_ptr->tensors) {
        auto m = b.take(t.value->rows(), t.value->cols());
        adam.push_back({m, b.take(t.value->rows(), t.value->cols())});
      }
    };
    Buffer<float> count;
    carve(count);
    adam_memory = Buffer<float>(count.used());
    carve(adam_memory);
    x.resize(D, B);
    th.resize(TW, B);
    tz.resize(C, B);
    q.resize(C, B);
    p.resize(C, cols);
    m.resize(cols);
    lse.resize(cols);
    data_rng.reserve(D * B);
  } catch (const std::bad_alloc&) {
    throw Error("mlp: out of memory for width " + std::to_string(sh.width) + ", depth " + std::to_string(sh.depth) +
                ", batch " + std::to_string(B) + " (about " +
                format_short(4.0 * (4.0 * sh.total_params() +
                                    static_cast<double>(cols) * static_cast<double>(sh.depth) *
                                        (3.0 * static_cast<double>(sh.width) + 2.0 * static_cast<double>(sh.ffn)))) +
                " bytes)");
  }
  Net<float>& net = *net_ptr;
  net.init(s_, init_rng);
  const GroupTable table = group_table(s_, sh, pt.lr, pt.wd);
  std::vector<int> labels(static_cast<std::size_t>(B));

  const Index points = static_cast<Index>(std::min<std::int64_t>(s_.curve_points, steps));
  TrialOutcome out;
  out.curve.step.reserve(static_cast<std::size_t>(points));
  out.curve.loss.reserve(static_cast<std::size_t>(points));
  std::int64_t next_log = std::max<std::int64_t>(1, steps / points), logged = 0;
  double interval_sum = 0;
  std::int64_t interval_n = 0;
  double initial = 0, bound = std::numeric_limits<double>::infinity();
  const double b1 = s_.beta1, b2 = s_.beta2;
  double b1_pow = 1, b2_pow = 1;
  bool diverged = false;
  std::int64_t step = 0;
  const auto t1 = clock::now();

  double data_seconds = 0, update_seconds = 0;  // parts of the step loop, for the benchmark
  for (step = 1; step <= steps; ++step) {
    const auto step_start = clock::now();
    // Fresh batch: inputs, teacher probabilities, sampled labels.
    data_rng.fill(x.data(), x.size());
    x = task_->sqrt_spectrum.asDiagonal() * x;
    task_->teacher(x, th, tz, q, m, lse, B);
    for (Index j = 0; j < B; ++j) {
      const float r = data_rng.uniform();
      const float* col = q.col(j).data();
      float acc = 0;
      Index c = 0;
      for (; c < C - 1; ++c) {
        acc += col[c];
        if (r < acc) break;
      }
      labels[static_cast<std::size_t>(j)] = static_cast<int>(c);
    }

    data_seconds += std::chrono::duration<double>(clock::now() - step_start).count();
    if (cancelled_.load(std::memory_order_relaxed)) {
      // The sweep is stopping; the master has recorded this trial LOST already.
      cancelled_ = false;
      TrialOutcome lost;
      lost.state = TrialState::Lost;
      lost.error = "ended at step " + std::to_string(step) + " because the sweep was stopping; reruns on resume";
      return lost;
    }
    net.forward(x, B);
    if (trace) {
      std::vector<double> row;
      for (Index l = 0; l <= net.L; ++l) row.push_back(static_cast<double>(net.xs[l].leftCols(B).cwiseAbs().mean()));
      row.push_back(static_cast<double>(net.logits.leftCols(B).cwiseAbs().mean()));
      trace->push_back(std::move(row));
    }
    softmax_columns(net.logits, p, m, lse, B);
    const double loss = soft_cross_entropy(net.logits, q, lse, B);
    if (step == 1) {
      initial = loss;
      bound = s_.diverge_factor * loss;
    }
    if (!std::isfinite(loss) || loss > bound) {
      diverged = true;
      out.curve.step.push_back(step);
      out.curve.loss.push_back(std::isfinite(loss) ? loss : std::numeric_limits<double>::infinity());
      out.final_loss = out.curve.loss.back();
      out.error = "loss diverged at step " + std::to_string(step) + " of " + std::to_string(steps) + ": " +
                  format_short(loss) +
                  (std::isfinite(loss)
                       ? " > " + format_short(s_.diverge_factor) + " x the first step's " + format_short(initial)
                       : "") +
                  " (lr " + format_short(pt.lr) + ")";
      break;
    }
    interval_sum += loss;
    ++interval_n;
    if (step == next_log) {
      out.curve.step.push_back(step);
      out.curve.loss.push_back(interval_sum / static_cast<double>(interval_n));
      interval_sum = 0;
      interval_n = 0;
      ++logged;
      next_log = logged >= points ? steps + 1 : std::max<std::int64_t>(step + 1, (steps * (logged + 1)) / points);
    }

    // dLoss/dlogits of the sampled labels' mean cross-entropy.
    for (Index j = 0; j < B; ++j) p(labels[static_cast<std::size_t>(j)], j) -= 1.0f;
    p.leftCols(B) *= 1.0f / static_cast<float>(B);

    // AdamW. Without clipping every tensor is updated inside the backward pass, as soon as its
    // gradient is final (the same arithmetic, in another order of tensors); clipping needs the
    // norm of the whole gradient first.
    const double sched = mlp_lr_factor(s_, step, steps);
    b1_pow *= b1;
    b2_pow *= b2;
    const double bc1 = 1 - b1_pow, bc2 = 1 - b2_pow;
    double clip_scale = 1;
    auto update = [&](Index k) {
      const auto update_start = clock::now();
      const auto& t = net.tensors[static_cast<std::size_t>(k)];
      const AppliedGroup& grp = table.g[t.group];
      const double lr_t = grp.lr * sched;
      double decay = 0;
      if (s_.wd_mode == MlpWdMode::Coupled)
        decay = lr_t * grp.wd;
      else if (s_.wd_mode == MlpWdMode::Decoupled)
        decay = sched * grp.wd;
      AdamStep a;
      a.clip = static_cast<float>(clip_scale);
      a.l2 = s_.wd_mode == MlpWdMode::L2 ? static_cast<float>(grp.wd) : 0.0f;
      a.b1 = static_cast<float>(b1);
      a.one_minus_b1 = static_cast<float>(1 - b1);
      a.b2 = static_cast<float>(b2);
      a.one_minus_b2 = static_cast<float>(1 - b2);
      a.keep = static_cast<float>(1 - decay);
      a.step_size = static_cast<float>(lr_t / bc1);
      a.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
      a.eps = static_cast<float>(grp.eps);
      auto& state = adam[static_cast<std::size_t>(k)];
      adam_update(a, t.value->data(), t.grad->data(), state.m.data(), state.v.data(), t.value->size());
      update_seconds += std::chrono::duration<double>(clock::now() - update_start).count();
    };
    if (s_.grad_clip > 0) {
      net.backward(x, p, B);
      const auto clip_start = clock::now();
      double sq = 0;
      for (const auto& t : net.tensors) sq += static_cast<double>(t.grad->squaredNorm());
      const double norm = std::sqrt(sq);
      if (norm > s_.grad_clip) clip_scale = s_.grad_clip / (norm + 1e-12);
      update_seconds += std::chrono::duration<double>(clock::now() - clip_start).count();
      for (std::size_t k = 0; k < net.tensors.size(); ++k) update(static_cast<Index>(k));
    } else {
      net.backward(x, p, B, update);
    }
  }
  const auto t2 = clock::now();

  out.steps = diverged ? step : steps;
  if (trace) return out;  // a coordinate check wants the trace, not the held-out loss
  if (!diverged) {
    // Held-out loss of the final model.
    double total = 0;
    for (Index start = 0; start < E; start += cols) {
      const Index n = std::min(cols, E - start);
      net.forward(task_->eval_x.middleCols(start, n), n);
      softmax_columns(net.logits, p, m, lse, n);
      total += soft_cross_entropy(net.logits, task_->eval_q.middleCols(start, n), lse, n) * static_cast<double>(n);
    }
    out.final_loss = total / static_cast<double>(E);
    if (!std::isfinite(out.final_loss) || out.final_loss > bound) {
      diverged = true;
      out.error = "held-out loss " + format_short(out.final_loss) + " after " + std::to_string(steps) +
                  " steps is non-finite or above " + format_short(s_.diverge_factor) + " x the first step's " +
                  format_short(initial) + " (lr " + format_short(pt.lr) + ")";
    }
  }
  if (diverged) {
    out.state = TrialState::Diverged;
    out.smooth_loss = std::isfinite(out.final_loss) ? out.final_loss : std::numeric_limits<double>::infinity();
  } else {
    out.state = TrialState::Done;
    out.smooth_loss =
        s_.fit_loss == MlpFitLoss::Heldout ? out.final_loss : smoothed_final_loss(out.curve.step, out.curve.loss);
  }
  out.details = applied_hyperparameters_json(trial, s_);
  const auto t3 = clock::now();
  stats_.steps = out.steps;
  stats_.setup_seconds = std::chrono::duration<double>(t1 - t0).count();
  stats_.train_seconds = std::chrono::duration<double>(t2 - t1).count();
  stats_.eval_seconds = std::chrono::duration<double>(t3 - t2).count();
  stats_.data_seconds = data_seconds;
  stats_.update_seconds = update_seconds;
  stats_.flops_per_step = sh.step_flops(B);
  return out;
}

}  // namespace hpsweep
