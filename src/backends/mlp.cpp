#include "hpsweep/backends/mlp.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <new>
#include <random>

#include "hpsweep/trials/smoothing.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/json.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

const char* to_string(MlpParametrization p) {
  switch (p) {
    case MlpParametrization::SP:
      return "sp";
    case MlpParametrization::MuP:
      return "mup";
    case MlpParametrization::UMuP:
      return "umup";
  }
  return "?";
}
const char* to_string(MlpSchedule s) {
  switch (s) {
    case MlpSchedule::Cosine:
      return "cosine";
    case MlpSchedule::Wsd:
      return "wsd";
    case MlpSchedule::Constant:
      return "constant";
  }
  return "?";
}
const char* to_string(MlpWdMode m) {
  switch (m) {
    case MlpWdMode::Coupled:
      return "coupled";
    case MlpWdMode::Decoupled:
      return "decoupled";
    case MlpWdMode::L2:
      return "l2";
  }
  return "?";
}
const char* to_string(MlpWdWidthRule r) {
  switch (r) {
    case MlpWdWidthRule::None:
      return "none";
    case MlpWdWidthRule::Linear:
      return "linear";
    case MlpWdWidthRule::Sqrt:
      return "sqrt";
  }
  return "?";
}

const std::vector<BackendOption>& mlp_backend_options() {
  static const std::vector<BackendOption> options = {
      // model
      {"width", "0", true,
       "hidden width; 0: derived from N at fixed depth, w = sqrt(N / (2 ffn_mult depth)) rounded to a multiple of 8"},
      {"depth", "4", true, "residual blocks"},
      {"ffn_mult", "4", true, "FFN width = ffn_mult * width"},
      {"activation", "gelu", true, "gelu (tanh form) or relu", true},
      // parametrization
      {"parametrization", "sp", true, "sp, mup or umup (per-group init, multipliers, lr and eps: see mlp.hpp)", true},
      {"base_width", "128", true, "width at which mup/umup equal the tuned base model (m = width / base_width)"},
      {"base_depth", "4", true, "depth of the base model (m_L = depth / base_depth)"},
      {"depth_alpha", "0", true, "residual branch multiplier m_L^-alpha; 0, or 0.5 (Depth-muP) to 1 (CompleteP)"},
      {"input_mult", "1", true, "forward multiplier of the input projection (alpha_in)"},
      {"output_mult", "1", true,
       "forward multiplier of the logits (alpha_out; divided by m under mup, by width under umup)"},
      {"init_std", "1", true, "sigma: weights are N(0, sigma^2 / fan_in) (sp, mup) or N(0, sigma^2) (umup)"},
      {"output_init", "auto", true, "auto (zero under mup, normal otherwise), zero or normal", true},
      // optimizer
      {"beta1", "0.9", true, "Adam beta1"},
      {"beta2", "0.95", true, "Adam beta2"},
      {"eps", "1e-08", true, "Adam epsilon (scaled per group under mup)"},
      {"grad_clip", "0", true, "global gradient norm clip; 0: off"},
      {"wd_mode", "coupled", true,
       "coupled (p -= lr_t*wd*p, PyTorch AdamW), decoupled (p -= s_t*wd*p) or l2 (wd*p added to the gradient)", true},
      {"wd_width_rule", "none", true, "hidden-matrix weight decay times 1 (none), m (linear) or sqrt(m) (sqrt)", true},
      // schedule
      {"schedule", "cosine", true,
       "cosine, wsd (constant then 1-sqrt cooldown) or constant (constant then linear cooldown)", true},
      {"warmup_frac", "0.05", true, "linear warmup, fraction of the steps"},
      {"decay_frac", "0.2", true, "wsd/constant: cooldown, fraction of the steps"},
      {"final_lr_frac", "0.1", true, "final lr as a fraction of the peak"},
      // task
      {"d_in", "64", true, "input dimension"},
      {"classes", "64", true, "output classes"},
      {"teacher_width", "256", true, "hidden units of the random teacher"},
      {"teacher_temp", "0.25", true, "teacher softmax temperature (lower: lower loss floor)"},
      {"spectrum_decay", "1", true, "input covariance spectrum s_i ~ (i+1)^-spectrum_decay"},
      {"eval_size", "4096", true, "held-out samples (shared by all trials)"},
      // run
      {"max_steps", "1e+05", true, "cap on the steps of one trial"},
      {"curve_points", "64", true, "points of the stored loss curve"},
      {"diverge_factor", "3", true, "DIVERGED when a step's loss exceeds diverge_factor x the first step's loss"},
      {"seeding", "trial", true,
       "trial (init and data from the trial id) or shared (from sweep seed and repeat: common random numbers)", true},
      {"fit_loss", "heldout", true,
       "what smooth_loss holds: heldout (final held-out loss) or curve (Step-Law smoothing of the curve)", true},
  };
  return options;
}

namespace {

double parse_option(const std::map<std::string, std::string>& o, const std::string& key, double def) {
  auto it = o.find(key);
  if (it == o.end()) return def;
  const std::string t = trim(it->second);
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (t.empty() || used != t.size() || !std::isfinite(v))
    throw InputError("[mlp] " + key + ": expected a number, got '" + it->second + "'");
  return v;
}

std::string parse_word(const std::map<std::string, std::string>& o, const std::string& key, const std::string& def,
                       const std::vector<std::string>& allowed) {
  auto it = o.find(key);
  const std::string v = it == o.end() ? def : to_lower(trim(it->second));
  if (std::find(allowed.begin(), allowed.end(), v) != allowed.end()) return v;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  const std::string guess = closest_match(v, allowed);
  throw InputError("[mlp] " + key + ": '" + (it == o.end() ? def : it->second) + "' is not one of " + list +
                   (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
}

void require(bool ok, const std::string& key, const std::string& what, double v) {
  if (!ok) throw InputError("[mlp] " + key + ": must be " + what + ", got " + format_double(v));
}

std::int64_t whole(const std::map<std::string, std::string>& o, const std::string& key, std::int64_t def, double lo,
                   double hi) {
  const double v = parse_option(o, key, static_cast<double>(def));
  require(v == std::floor(v) && v >= lo && v <= hi, key,
          "a whole number in [" + format_double(lo) + ", " + format_double(hi) + "]", v);
  return static_cast<std::int64_t>(v);
}

}  // namespace

MlpSettings MlpSettings::from_options(const std::map<std::string, std::string>& o) {
  MlpSettings s;
  auto num = [&](const char* key, double& dst, double lo, double hi, const char* what) {
    dst = parse_option(o, key, dst);
    require(dst >= lo && dst <= hi, key, what, dst);
  };
  auto pos = [&](const char* key, double& dst) {
    dst = parse_option(o, key, dst);
    require(dst > 0, key, "positive", dst);
  };
  constexpr double kBig = 1e300;
  s.width = whole(o, "width", s.width, 0, 65536);
  s.depth = whole(o, "depth", s.depth, 1, 1024);
  pos("ffn_mult", s.ffn_mult);
  s.activation =
      parse_word(o, "activation", "gelu", {"gelu", "relu"}) == "gelu" ? MlpActivation::Gelu : MlpActivation::Relu;

  const std::string p = parse_word(o, "parametrization", "sp", {"sp", "mup", "umup"});
  s.parametrization = p == "sp"    ? MlpParametrization::SP
                      : p == "mup" ? MlpParametrization::MuP
                                   : MlpParametrization::UMuP;
  pos("base_width", s.base_width);
  pos("base_depth", s.base_depth);
  num("depth_alpha", s.depth_alpha, 0, 1, "0 or in [0.5, 1]");
  require(s.depth_alpha == 0 || s.depth_alpha >= 0.5, "depth_alpha", "0 or in [0.5, 1]", s.depth_alpha);
  pos("input_mult", s.input_mult);
  pos("output_mult", s.output_mult);
  pos("init_std", s.init_std);
  const std::string oi = parse_word(o, "output_init", "auto", {"auto", "zero", "normal"});
  s.output_init = oi == "auto" ? MlpOutputInit::Auto : oi == "zero" ? MlpOutputInit::Zero : MlpOutputInit::Normal;

  num("beta1", s.beta1, 0, 0.999999999, "in [0, 1)");
  num("beta2", s.beta2, 0, 0.999999999, "in [0, 1)");
  num("eps", s.eps, 0, 1, "in [0, 1]");
  num("grad_clip", s.grad_clip, 0, kBig, "non-negative");
  const std::string wm = parse_word(o, "wd_mode", "coupled", {"coupled", "decoupled", "l2"});
  s.wd_mode = wm == "coupled" ? MlpWdMode::Coupled : wm == "decoupled" ? MlpWdMode::Decoupled : MlpWdMode::L2;
  const std::string wr = parse_word(o, "wd_width_rule", "none", {"none", "linear", "sqrt"});
  s.wd_width_rule = wr == "none"     ? MlpWdWidthRule::None
                    : wr == "linear" ? MlpWdWidthRule::Linear
                                     : MlpWdWidthRule::Sqrt;

  const std::string sc = parse_word(o, "schedule", "cosine", {"cosine", "wsd", "constant"});
  s.schedule = sc == "cosine" ? MlpSchedule::Cosine : sc == "wsd" ? MlpSchedule::Wsd : MlpSchedule::Constant;
  num("warmup_frac", s.warmup_frac, 0, 0.999999, "in [0, 1)");
  num("decay_frac", s.decay_frac, 0, 1, "in [0, 1]");
  num("final_lr_frac", s.final_lr_frac, 0, 1, "in [0, 1]");
  if (s.schedule != MlpSchedule::Cosine && s.warmup_frac + s.decay_frac > 1)
    throw InputError("[mlp] warmup_frac + decay_frac must not exceed 1, got " +
                     format_double(s.warmup_frac + s.decay_frac));

  s.d_in = whole(o, "d_in", s.d_in, 1, 1 << 16);
  s.classes = whole(o, "classes", s.classes, 2, 1 << 16);
  s.teacher_width = whole(o, "teacher_width", s.teacher_width, 1, 1 << 16);
  pos("teacher_temp", s.teacher_temp);
  num("spectrum_decay", s.spectrum_decay, 0, 16, "in [0, 16]");
  s.eval_size = whole(o, "eval_size", s.eval_size, 1, 1 << 24);

  s.max_steps = whole(o, "max_steps", s.max_steps, 1, 1e12);
  s.curve_points = whole(o, "curve_points", s.curve_points, 1, 1e7);
  num("diverge_factor", s.diverge_factor, 1.000001, kBig, "above 1");
  s.seeding =
      parse_word(o, "seeding", "trial", {"trial", "shared"}) == "trial" ? MlpSeeding::Trial : MlpSeeding::Shared;
  s.fit_loss =
      parse_word(o, "fit_loss", "heldout", {"heldout", "curve"}) == "heldout" ? MlpFitLoss::Heldout : MlpFitLoss::Curve;
  return s;
}

void validate_mlp_options(const std::map<std::string, std::string>& options) {
  (void)MlpSettings::from_options(options);
}

// ---------------------------------------------------------------------------------------------
// Shape, schedule, per-group hyperparameters
// ---------------------------------------------------------------------------------------------

double MlpShape::params() const {
  const double w = static_cast<double>(width), f = static_cast<double>(ffn);
  return static_cast<double>(depth) * (2.0 * w * f + w) + w;
}
double MlpShape::total_params() const {
  return params() + static_cast<double>(width) * static_cast<double>(d_in + classes);
}
double MlpShape::step_flops(std::int64_t batch) const {
  const double w = static_cast<double>(width), f = static_cast<double>(ffn), b = static_cast<double>(batch);
  // forward 2*b per weight; backward: input gradient and weight gradient, 2*b each, except
  // that the input projection needs no input gradient.
  const double blocks = static_cast<double>(depth) * 2.0 * w * f;
  return 2.0 * b * (3.0 * blocks + 3.0 * w * static_cast<double>(classes) + 2.0 * w * static_cast<double>(d_in));
}

MlpShape mlp_shape(const TrialPoint& p, const MlpSettings& s) {
  MlpShape sh;
  sh.d_in = s.d_in;
  sh.classes = s.classes;
  sh.depth = s.depth;
  if (s.width > 0) {
    sh.width = s.width;
  } else {
    if (!(p.params > 0))
      throw InputError("mlp: width = 0 derives the width from N, but the trial has N = " + format_short(p.params));
    const double w = std::sqrt(p.params / (2.0 * s.ffn_mult * static_cast<double>(s.depth)));
    sh.width = std::max<std::int64_t>(8, 8 * std::llround(w / 8.0));
    if (sh.width > 16384)
      throw InputError("mlp: N = " + format_short(p.params) + " at depth " + std::to_string(s.depth) + " needs width " +
                       std::to_string(sh.width) + " (> 16384); raise depth or lower N");
  }
  sh.ffn = std::max<std::int64_t>(1, std::llround(s.ffn_mult * static_cast<double>(sh.width)));
  return sh;
}

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

namespace {

enum Group { kInput = 0, kW1, kW2, kNorm, kFinalNorm, kOutput, kGroups };
const char* const kGroupNames[kGroups] = {"input", "hidden.w1", "hidden.w2", "hidden.norm", "final_norm", "output"};

// The parametrization's table (mlp.hpp) evaluated for one shape, lr and wd.
struct GroupTable {
  AppliedGroup g[kGroups];
  double residual = 1;
};

GroupTable group_table(const MlpSettings& s, const MlpShape& sh, double lr, double wd) {
  const double w = static_cast<double>(sh.width), f = static_cast<double>(sh.ffn), L = static_cast<double>(sh.depth);
  const double d_in = static_cast<double>(sh.d_in);
  const double m = w / s.base_width, m_f = f / (s.ffn_mult * s.base_width), m_L = L / s.base_depth;
  const double a = s.depth_alpha;
  const double sigma = s.init_std, eps = s.eps;
  auto rule = [&](double mm) {
    switch (s.wd_width_rule) {
      case MlpWdWidthRule::None:
        return 1.0;
      case MlpWdWidthRule::Linear:
        return mm;
      case MlpWdWidthRule::Sqrt:
        return std::sqrt(mm);
    }
    return 1.0;
  };
  const double dl = a > 0 ? std::pow(m_L, a - 1.0) : 1.0;  // depth lr factor (CompleteP)
  const double de = a > 0 ? std::pow(m_L, -a) : 1.0;       // depth eps factor

  GroupTable t;
  t.residual = a > 0 ? std::pow(m_L, -a) : 1.0;
  for (int i = 0; i < kGroups; ++i) {
    t.g[i].name = kGroupNames[i];
    t.g[i].lr = lr;
    t.g[i].eps = eps;
    t.g[i].wd = wd;
  }
  t.g[kInput].tensors = 1;
  t.g[kInput].params = sh.width * sh.d_in;
  t.g[kW1].tensors = t.g[kW2].tensors = t.g[kNorm].tensors = sh.depth;
  t.g[kW1].params = t.g[kW2].params = sh.depth * sh.width * sh.ffn;
  t.g[kNorm].params = sh.depth * sh.width;
  t.g[kFinalNorm].tensors = 1;
  t.g[kFinalNorm].params = sh.width;
  t.g[kOutput].tensors = 1;
  t.g[kOutput].params = sh.classes * sh.width;
  for (int i : {kNorm, kFinalNorm}) {
    t.g[i].init_mean = 1;
    t.g[i].init_std = 0;
    t.g[i].wd = 0;
  }
  t.g[kW1].wd = wd * rule(m);
  t.g[kW2].wd = wd * rule(m_f);

  const bool zero_out = s.output_init == MlpOutputInit::Zero ||
                        (s.output_init == MlpOutputInit::Auto && s.parametrization == MlpParametrization::MuP);
  switch (s.parametrization) {
    case MlpParametrization::SP:
    case MlpParametrization::MuP: {
      const bool mup = s.parametrization == MlpParametrization::MuP;
      t.g[kInput].init_std = sigma / std::sqrt(d_in);
      t.g[kInput].multiplier = s.input_mult;
      t.g[kW1].init_std = sigma / std::sqrt(w);
      t.g[kW2].init_std = sigma / std::sqrt(f);
      t.g[kW1].lr = lr * dl / (mup ? m : 1.0);
      t.g[kW2].lr = lr * dl / (mup ? m_f : 1.0);
      t.g[kW1].eps = eps * de / (mup ? m : 1.0);
      t.g[kW2].eps = eps * de / (mup ? m_f : 1.0);
      t.g[kNorm].lr = lr * dl;
      t.g[kOutput].init_std = zero_out ? 0.0 : sigma / std::sqrt(mup ? s.base_width : w);
      t.g[kOutput].multiplier = s.output_mult / (mup ? m : 1.0);
      if (mup) {
        t.g[kInput].eps = eps / m;
        t.g[kOutput].eps = eps / m;
      }
      break;
    }
    case MlpParametrization::UMuP: {
      const double branch = 1.0 / std::sqrt(L);
      t.g[kInput].init_std = sigma;
      t.g[kInput].multiplier = s.input_mult / std::sqrt(d_in);
      t.g[kInput].lr = lr / std::sqrt(d_in);
      t.g[kW1].init_std = sigma;
      t.g[kW1].multiplier = 1.0 / std::sqrt(w);
      t.g[kW1].lr = lr * branch / std::sqrt(w);
      t.g[kW2].init_std = sigma;
      t.g[kW2].multiplier = 1.0 / std::sqrt(f);
      t.g[kW2].lr = lr * branch / std::sqrt(f);
      t.g[kNorm].lr = lr * branch;
      t.g[kOutput].init_std = zero_out ? 0.0 : sigma;
      t.g[kOutput].multiplier = s.output_mult / w;
      break;
    }
  }
  return t;
}

std::int64_t planned_steps(const TrialPoint& p, const MlpSettings& s) {
  if (p.batch < 1 || p.seq_len < 1 || !(p.tokens > 0))
    throw InputError("mlp: the trial needs batch >= 1, seq_len >= 1 and tokens > 0");
  return std::clamp<std::int64_t>(p.steps(), 1, s.max_steps);
}

}  // namespace

std::vector<AppliedGroup> applied_hyperparameters(const Trial& trial, const MlpSettings& s) {
  const GroupTable t = group_table(s, mlp_shape(trial.point, s), trial.point.lr, trial.point.wd);
  return std::vector<AppliedGroup>(t.g, t.g + kGroups);
}

std::vector<AppliedGroup> applied_hyperparameters(const Trial& trial,
                                                  const std::map<std::string, std::string>& options) {
  return applied_hyperparameters(trial, MlpSettings::from_options(options));
}

std::string applied_hyperparameters_json(const Trial& trial, const std::map<std::string, std::string>& options) {
  return applied_hyperparameters_json(trial, MlpSettings::from_options(options));
}

std::string applied_hyperparameters_json(const Trial& trial, const MlpSettings& s) {
  const MlpShape sh = mlp_shape(trial.point, s);
  const GroupTable t = group_table(s, sh, trial.point.lr, trial.point.wd);
  const std::int64_t steps = planned_steps(trial.point, s);
  const double T = static_cast<double>(steps);
  JsonWriter j;
  j.begin_object();
  j.key("parametrization").value(to_string(s.parametrization));
  j.key("width").value(static_cast<long long>(sh.width)).key("depth").value(static_cast<long long>(sh.depth));
  j.key("ffn").value(static_cast<long long>(sh.ffn)).key("params").value(sh.params());
  j.key("total_params").value(sh.total_params());
  j.key("batch_samples")
      .value(static_cast<long long>(trial.point.batch))
      .key("steps")
      .value(static_cast<long long>(steps));
  j.key("schedule").value(to_string(s.schedule));
  j.key("warmup_steps").value(static_cast<long long>(std::round(s.warmup_frac * T)));
  j.key("decay_steps")
      .value(static_cast<long long>(s.schedule == MlpSchedule::Cosine
                                        ? steps - static_cast<std::int64_t>(std::round(s.warmup_frac * T))
                                        : static_cast<std::int64_t>(std::round(s.decay_frac * T))));
  j.key("final_lr_frac").value(s.final_lr_frac);
  j.key("wd_mode").value(to_string(s.wd_mode)).key("wd_width_rule").value(to_string(s.wd_width_rule));
  j.key("depth_alpha").value(s.depth_alpha).key("residual_mult").value(t.residual);
  j.key("beta1").value(s.beta1).key("beta2").value(s.beta2).key("grad_clip").value(s.grad_clip);
  j.key("groups").begin_array();
  for (const auto& g : t.g) {
    j.begin_object();
    j.key("name").value(g.name).key("tensors").value(static_cast<long long>(g.tensors));
    j.key("params").value(static_cast<long long>(g.params)).key("init_mean").value(g.init_mean);
    j.key("init_std").value(g.init_std).key("multiplier").value(g.multiplier);
    j.key("lr").value(g.lr).key("wd").value(g.wd).key("eps").value(g.eps);
    j.end_object();
  }
  j.end_array();
  j.end_object();
  return j.str();
}

// ---------------------------------------------------------------------------------------------
// Random numbers: Box-Muller over mt19937_64 (the standard distributions are
// implementation-defined). Bulk form: one 64-bit draw gives two 24-bit uniforms, and the
// transcendental functions run vectorised over the whole buffer.
// ---------------------------------------------------------------------------------------------

namespace {

using Index = Eigen::Index;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
std::uint64_t mix(std::uint64_t a, std::uint64_t b) { return splitmix64(splitmix64(a) ^ (b * 0xD1B54A32D192ED03ull)); }

class NormalSource {
 public:
  explicit NormalSource(std::uint64_t seed) : rng_(seed) {}
  // Sizes the scratch buffers so fill(n <= max_n) never allocates.
  void reserve(Index max_n) {
    const Index half = (max_n + 1) / 2;
    if (u1_.size() < half) {
      u1_.resize(half);
      u2_.resize(half);
      r_.resize(half);
    }
  }
  void fill(float* out, Index n) {
    const Index half = (n + 1) / 2;
    reserve(n);
    for (Index i = 0; i < half; ++i) {
      const std::uint64_t x = rng_();
      u1_[i] = (static_cast<float>(x >> 40) + 0.5f) * 0x1.0p-24f;       // (0, 1)
      u2_[i] = static_cast<float>((x >> 16) & 0xFFFFFFu) * 0x1.0p-24f;  // [0, 1)
    }
    auto u1 = u1_.head(half), u2 = u2_.head(half), r = r_.head(half);
    r = (-2.0f * u1.log()).sqrt();
    u2 *= static_cast<float>(2.0 * M_PI);
    Eigen::Map<Eigen::ArrayXf> o(out, n);
    o.head(half) = r * u2.cos();
    o.tail(n - half) = r.head(n - half) * u2.head(n - half).sin();
  }
  float uniform() { return static_cast<float>(rng_() >> 40) * 0x1.0p-24f; }

 private:
  std::mt19937_64 rng_;
  Eigen::ArrayXf u1_, u2_, r_;
};

// ---------------------------------------------------------------------------------------------
// The network. Activations are column-major (features x samples): every sample is a contiguous
// column, every GEMM is a plain Eigen product on contiguous blocks, with the forward
// multipliers folded into the GEMM's alpha. Buffers are sized once for max_cols samples; all
// work on n <= max_cols uses leftCols(n) views.
// ---------------------------------------------------------------------------------------------

constexpr double kNormEps = 1e-6;
constexpr double kGeluC0 = 0.7978845608028654;  // sqrt(2/pi)
constexpr double kGeluC1 = 0.044715;

template <class S>
struct Net {
  using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;
  using Row = Eigen::Matrix<S, 1, Eigen::Dynamic>;

  struct Tensor {
    std::string name;
    Group group;
    Mat* value;
    Mat* grad;
  };

  MlpShape sh;
  MlpActivation act;
  S in_mult, w1_mult, w2_mult, res, out_mult;
  Index w, f, L, max_cols;

  Mat w_in, w_out, g_f;        // g_f: w x 1
  std::vector<Mat> w1, w2, g;  // g[l]: w x 1
  Mat d_w_in, d_w_out, d_g_f;
  std::vector<Mat> d_w1, d_w2, d_g;
  std::vector<Tensor> tensors;

  std::vector<Mat> xs;     // L+1 residual stream states, w x n
  std::vector<Row> rinv;   // L+1 inverse rms per sample (last: final norm)
  std::vector<Mat> xn;     // L+1 normalised inputs of W1 (last: of W_out), w x n
  std::vector<Mat> a, da;  // L activations and activation derivatives, f x n
  Mat u;                   // f x n pre-activation scratch
  Mat logits;              // classes x n
  Mat dx, dxn, du, xhat;   // backward scratch
  Row dot;

  Net(const MlpSettings& s, const MlpShape& shape, Index cols) : sh(shape), act(s.activation) {
    w = shape.width;
    f = shape.ffn;
    L = shape.depth;
    const GroupTable t = group_table(s, shape, 1.0, 0.0);
    in_mult = static_cast<S>(t.g[kInput].multiplier);
    w1_mult = static_cast<S>(t.g[kW1].multiplier);
    w2_mult = static_cast<S>(t.g[kW2].multiplier);
    out_mult = static_cast<S>(t.g[kOutput].multiplier);
    res = static_cast<S>(t.residual);

    w_in.resize(w, shape.d_in);
    w_out.resize(shape.classes, w);
    g_f.setOnes(w, 1);
    d_w_in.setZero(w, shape.d_in);
    d_w_out.setZero(shape.classes, w);
    d_g_f.setZero(w, 1);
    sized(w1, L, f, w);
    sized(w2, L, w, f);
    sized(g, L, w, 1);
    sized(d_w1, L, f, w);
    sized(d_w2, L, w, f);
    sized(d_g, L, w, 1);
    for (Index l = 0; l < L; ++l) {
      g[l].setOnes();
      d_w1[l].setZero();
      d_w2[l].setZero();
      d_g[l].setZero();
    }

    tensors.push_back({"input", kInput, &w_in, &d_w_in});
    for (Index l = 0; l < L; ++l) {
      const std::string b = "block" + std::to_string(l);
      tensors.push_back({b + ".norm", kNorm, &g[l], &d_g[l]});
      tensors.push_back({b + ".w1", kW1, &w1[l], &d_w1[l]});
      tensors.push_back({b + ".w2", kW2, &w2[l], &d_w2[l]});
    }
    tensors.push_back({"final_norm", kFinalNorm, &g_f, &d_g_f});
    tensors.push_back({"output", kOutput, &w_out, &d_w_out});

    set_max_cols(cols);
  }
  Net(const Net&) = delete;  // tensors point into this object
  Net& operator=(const Net&) = delete;

  // `count` matrices of rows x cols, constructed in place (no copies).
  template <class M>
  static void sized(std::vector<M>& v, Index count, Index rows, Index cols) {
    v.resize(static_cast<std::size_t>(count));
    for (auto& m : v) m.resize(rows, cols);
  }

  void set_max_cols(Index cols) {
    max_cols = cols;
    sized(xs, L + 1, w, cols);
    sized(rinv, L + 1, 1, cols);
    sized(xn, L + 1, w, cols);
    sized(a, L, f, cols);
    sized(da, L, f, cols);
    u.resize(f, cols);
    logits.resize(sh.classes, cols);
    dx.resize(w, cols);
    dxn.resize(w, cols);
    du.resize(f, cols);
    xhat.resize(w, cols);
    dot.resize(cols);
  }

  // Standard normals scaled per group; gains 1.
  void init(const MlpSettings& s, NormalSource& rng) {
    const GroupTable t = group_table(s, sh, 1.0, 0.0);
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic> tmp;
    for (auto& tensor : tensors) {
      const AppliedGroup& grp = t.g[tensor.group];
      Mat& v = *tensor.value;
      if (grp.init_std == 0) {
        v.setConstant(static_cast<S>(grp.init_mean));
        continue;
      }
      tmp.resize(v.rows(), v.cols());
      rng.fill(tmp.data(), tmp.size());
      v = (tmp.template cast<S>() * static_cast<S>(grp.init_std)).array() + static_cast<S>(grp.init_mean);
    }
  }

  // y = g * x / rms(x), per column.
  void norm_forward(const Mat& x, const Mat& gain, Row& r, Mat& y, Index n) {
    r.head(n) =
        ((x.leftCols(n).colwise().squaredNorm() / static_cast<S>(w)).array() + static_cast<S>(kNormEps)).rsqrt();
    y.leftCols(n).noalias() = gain.col(0).asDiagonal() * x.leftCols(n) * r.head(n).asDiagonal();
  }

  // dx += d(norm)/dx^T dy; d_gain = sum over samples of dy * xhat. Overwrites dy.
  void norm_backward(Mat& dy, const Mat& x, const Row& r, const Mat& gain, Mat& d_gain, Mat& dx_out, Index n,
                     bool accumulate) {
    auto xh = xhat.leftCols(n);
    auto d = dy.leftCols(n);
    xh.noalias() = x.leftCols(n) * r.head(n).asDiagonal();
    d_gain.col(0).noalias() = (d.array() * xh.array()).matrix().rowwise().sum();
    d.noalias() = gain.col(0).asDiagonal() * d;  // coefficient-wise: safe in place
    dot.head(n).noalias() = (d.array() * xh.array()).matrix().colwise().sum() / static_cast<S>(w);
    if (accumulate)
      dx_out.leftCols(n).array() +=
          (d.array() - xh.array().rowwise() * dot.head(n).array()).rowwise() * r.head(n).array();
    else
      dx_out.leftCols(n).array() =
          (d.array() - xh.array().rowwise() * dot.head(n).array()).rowwise() * r.head(n).array();
  }

  void activation(Index l, Index n) {
    auto U = u.leftCols(n).array();
    auto A = a[l].leftCols(n).array();
    auto D = da[l].leftCols(n).array();
    if (act == MlpActivation::Relu) {
      A = U.max(S(0));
      D = (U > S(0)).template cast<S>();
      return;
    }
    const S c0 = static_cast<S>(kGeluC0), c1 = static_cast<S>(kGeluC1);
    D = (c0 * (U + c1 * U.cube())).tanh();  // D holds tanh(.) for a moment
    A = S(0.5) * U * (S(1) + D);
    D = S(0.5) * (S(1) + D) + (S(0.5) * c0) * U * (S(1) - D.square()) * (S(1) + (S(3) * c1) * U.square());
  }

  // Fills logits.leftCols(n) for inputs x (d_in x >= n).
  template <class X>
  void forward(const X& x, Index n) {
    xs[0].leftCols(n).noalias() = in_mult * (w_in * x.leftCols(n));
    for (Index l = 0; l < L; ++l) {
      norm_forward(xs[l], g[l], rinv[l], xn[l], n);
      u.leftCols(n).noalias() = w1_mult * (w1[l] * xn[l].leftCols(n));
      activation(l, n);
      xs[l + 1].leftCols(n) = xs[l].leftCols(n);
      xs[l + 1].leftCols(n).noalias() += (res * w2_mult) * (w2[l] * a[l].leftCols(n));
    }
    norm_forward(xs[L], g_f, rinv[L], xn[L], n);
    logits.leftCols(n).noalias() = out_mult * (w_out * xn[L].leftCols(n));
  }

  // Gradients of every tensor given dlogits (classes x n) = dLoss/dlogits.
  template <class X, class D>
  void backward(const X& x, const D& dlogits, Index n) {
    d_w_out.noalias() = out_mult * (dlogits.leftCols(n) * xn[L].leftCols(n).transpose());
    dxn.leftCols(n).noalias() = out_mult * (w_out.transpose() * dlogits.leftCols(n));
    norm_backward(dxn, xs[L], rinv[L], g_f, d_g_f, dx, n, false);
    const S c2 = res * w2_mult;
    for (Index l = L - 1; l >= 0; --l) {
      d_w2[l].noalias() = c2 * (dx.leftCols(n) * a[l].leftCols(n).transpose());
      du.leftCols(n).noalias() = c2 * (w2[l].transpose() * dx.leftCols(n));
      du.leftCols(n).array() *= da[l].leftCols(n).array();
      d_w1[l].noalias() = w1_mult * (du.leftCols(n) * xn[l].leftCols(n).transpose());
      dxn.leftCols(n).noalias() = w1_mult * (w1[l].transpose() * du.leftCols(n));
      norm_backward(dxn, xs[l], rinv[l], g[l], d_g[l], dx, n, true);
    }
    d_w_in.noalias() = in_mult * (dx.leftCols(n) * x.leftCols(n).transpose());
  }
};

using MatF = Eigen::MatrixXf;
using RowF = Eigen::RowVectorXf;

// Column-wise softmax statistics of logits z (c x n): m = max, lse = m + log sum exp(z - m);
// p = softmax(z) written to `p`.
template <class Z, class P, class R>
void softmax_columns(const Z& z, P& p, R& m, R& lse, Index n) {
  m.head(n) = z.leftCols(n).colwise().maxCoeff();
  p.leftCols(n) = z.leftCols(n);
  p.leftCols(n).rowwise() -= m.head(n);
  p.leftCols(n).array() = p.leftCols(n).array().exp();  // in place: vectorised exp
  lse.head(n) = p.leftCols(n).colwise().sum();
  p.leftCols(n).array().rowwise() /= lse.head(n).array();
  lse.head(n).array() = lse.head(n).array().log() + m.head(n).array();
}

}  // namespace

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
    h.leftCols(n).noalias() = t1 * x.leftCols(n);
    h.leftCols(n).array() = h.leftCols(n).array().tanh();
    z.leftCols(n).noalias() = t2 * h.leftCols(n);
    softmax_columns(z, q, m, lse, n);
  }
};

MlpBackend::MlpBackend(MlpSettings settings, std::uint64_t sweep_seed)
    : s_(settings), sweep_seed_(sweep_seed), task_(std::make_unique<Task>(settings, sweep_seed)) {}
MlpBackend::~MlpBackend() = default;
double MlpBackend::task_floor() const { return task_->floor; }

std::unique_ptr<Backend> make_mlp_backend(const std::map<std::string, std::string>& options, std::uint64_t sweep_seed) {
  return std::make_unique<MlpBackend>(MlpSettings::from_options(options), sweep_seed);
}

// ---------------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------------

namespace {

struct AdamState {
  MatF m, v;
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

TrialOutcome MlpBackend::run(const Trial& trial) { return train(trial, nullptr, 0); }

std::vector<std::vector<double>> MlpBackend::activation_trace(const Trial& trial, std::int64_t steps) {
  std::vector<std::vector<double>> trace;
  train(trial, &trace, steps);
  return trace;
}

TrialOutcome MlpBackend::train(const Trial& trial, std::vector<std::vector<double>>* trace, std::int64_t trace_steps) {
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

  // Everything the step loop touches is allocated here, once.
  std::unique_ptr<Net<float>> net_ptr;
  std::vector<AdamState> adam;
  MatF x, th, tz, q, p;
  RowF m, lse;
  try {
    net_ptr = std::make_unique<Net<float>>(s_, sh, cols);
    for (const auto& t : net_ptr->tensors)
      adam.push_back({MatF::Zero(t.value->rows(), t.value->cols()), MatF::Zero(t.value->rows(), t.value->cols())});
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

  for (step = 1; step <= steps; ++step) {
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
    net.backward(x, p, B);

    // AdamW.
    const double sched = mlp_lr_factor(s_, step, steps);
    double clip_scale = 1;
    if (s_.grad_clip > 0) {
      double sq = 0;
      for (const auto& t : net.tensors) sq += static_cast<double>(t.grad->squaredNorm());
      const double norm = std::sqrt(sq);
      if (norm > s_.grad_clip) clip_scale = s_.grad_clip / (norm + 1e-12);
    }
    b1_pow *= b1;
    b2_pow *= b2;
    const double bc1 = 1 - b1_pow, bc2 = 1 - b2_pow;
    for (std::size_t k = 0; k < net.tensors.size(); ++k) {
      const auto& t = net.tensors[k];
      const AppliedGroup& grp = table.g[t.group];
      auto P = t.value->array();
      auto G = t.grad->array();
      auto M = adam[k].m.array();
      auto V = adam[k].v.array();
      if (clip_scale != 1) G *= static_cast<float>(clip_scale);
      if (s_.wd_mode == MlpWdMode::L2 && grp.wd != 0) G += static_cast<float>(grp.wd) * P;
      M = static_cast<float>(b1) * M + static_cast<float>(1 - b1) * G;
      V = static_cast<float>(b2) * V + static_cast<float>(1 - b2) * G.square();
      const double lr_t = grp.lr * sched;
      double decay = 0;
      if (s_.wd_mode == MlpWdMode::Coupled)
        decay = lr_t * grp.wd;
      else if (s_.wd_mode == MlpWdMode::Decoupled)
        decay = sched * grp.wd;
      const float step_size = static_cast<float>(lr_t / bc1);
      const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
      const float eps = static_cast<float>(grp.eps);
      if (decay != 0) P *= static_cast<float>(1 - decay);
      P -= step_size * M / (V.sqrt() * inv_sqrt_bc2 + eps);
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
  stats_.flops_per_step = sh.step_flops(B);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Double-precision probe
// ---------------------------------------------------------------------------------------------

struct MlpProbe::Impl {
  MlpShape shape;
  Net<double> net;
  std::vector<Tensor> tensors;
  Eigen::MatrixXd p;
  Eigen::RowVectorXd m, lse;
  Index n = 0;
  Impl(const MlpSettings& s, const MlpShape& sh, std::uint64_t seed) : shape(sh), net(s, sh, 1) {
    NormalSource rng(seed);
    net.init(s, rng);
    for (const auto& t : net.tensors)
      tensors.push_back({t.name, kGroupNames[t.group], static_cast<std::size_t>(t.value->size())});
  }
};

MlpProbe::MlpProbe(const MlpSettings& s, const MlpShape& shape, std::uint64_t seed)
    : impl_(std::make_unique<Impl>(s, shape, seed)) {}
MlpProbe::~MlpProbe() = default;
const std::vector<MlpProbe::Tensor>& MlpProbe::tensors() const { return impl_->tensors; }
double& MlpProbe::value(std::size_t tensor, std::size_t index) {
  return impl_->net.tensors.at(tensor).value->data()[index];
}
double MlpProbe::gradient(std::size_t tensor, std::size_t index) const {
  return impl_->net.tensors.at(tensor).grad->data()[index];
}

double MlpProbe::loss(const std::vector<double>& x, const std::vector<int>& labels, bool gradients) {
  auto& I = *impl_;
  const Index n = static_cast<Index>(labels.size());
  if (n < 1 || static_cast<Index>(x.size()) != n * I.shape.d_in)
    throw Error("MlpProbe::loss: x must hold d_in x labels.size() values, labels must not be empty");
  if (n > I.net.max_cols) I.net.set_max_cols(n);
  if (I.p.cols() < n) {
    I.p.resize(I.shape.classes, n);
    I.m.resize(n);
    I.lse.resize(n);
  }
  const Eigen::Map<const Eigen::MatrixXd> xm(x.data(), I.shape.d_in, n);
  I.net.forward(xm, n);
  I.n = n;
  softmax_columns(I.net.logits, I.p, I.m, I.lse, n);
  double total = 0;
  for (Index j = 0; j < n; ++j) {
    const int y = labels[static_cast<std::size_t>(j)];
    if (y < 0 || y >= I.shape.classes) throw Error("MlpProbe::loss: label out of range");
    total += I.lse[j] - I.net.logits(y, j);
  }
  if (gradients) {
    auto dl = I.p.leftCols(n);
    for (Index j = 0; j < n; ++j) dl(labels[static_cast<std::size_t>(j)], j) -= 1.0;
    dl /= static_cast<double>(n);
    I.net.backward(xm, I.p, n);
  }
  return total / static_cast<double>(n);
}

std::vector<double> MlpProbe::mean_abs_activations() const {
  const auto& I = *impl_;
  std::vector<double> out;
  for (Index l = 1; l <= I.net.L; ++l) out.push_back(I.net.xs[l].leftCols(I.n).cwiseAbs().mean());
  out.push_back(I.net.logits.leftCols(I.n).cwiseAbs().mean());
  return out;
}

}  // namespace hpsweep
