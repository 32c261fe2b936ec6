// The [mlp] options, the network's shape and the per-group hyperparameters a trial applies.
#include "backends/mlp/settings.hpp"

#include <algorithm>
#include <cmath>

#include "hpsweep/util/error.hpp"
#include "hpsweep/util/json.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

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
  s.parametrization = parse_parametrization(p);
  // Whole numbers: they are the base model's shape in transfer().
  s.base_width = static_cast<double>(whole(o, "base_width", 128, 1, 1e9));
  s.base_depth = static_cast<double>(whole(o, "base_depth", 4, 1, 1e9));
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
  s.wd_width_rule = parse_wd_rule(wr);

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
  if (auto it = o.find("threads"); it != o.end() && to_lower(trim(it->second)) == "auto")
    s.threads = 0;
  else
    s.threads = whole(o, "threads", s.threads, 1, 1024);

  // The parametrization, weight-decay rule and depth alpha must be a combination transfer() has
  // rules for (e.g. depth_alpha is a μP rule): ask it once at the base shape.
  try {
    MlpShape base;
    base.d_in = s.d_in;
    base.classes = s.classes;
    base.width = static_cast<std::int64_t>(s.base_width);
    base.depth = static_cast<std::int64_t>(s.base_depth);
    base.ffn = mlp_detail::ffn_width(s, base.width);
    (void)mlp_transfer_table(s, base, 1, 0);
  } catch (const InputError& e) {
    throw InputError(std::string("[mlp] parametrization ") + to_string(s.parametrization) + ", wd_width_rule " +
                     to_string(s.wd_width_rule) + ", depth_alpha " + format_double(s.depth_alpha) + ": " + e.what());
  }
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
  sh.ffn = mlp_detail::ffn_width(s, sh.width);
  return sh;
}

namespace mlp_detail {

std::int64_t ffn_width(const MlpSettings& s, std::int64_t width) {
  return std::max<std::int64_t>(1, std::llround(s.ffn_mult * static_cast<double>(width)));
}

GroupTable group_table(const MlpSettings& s, const MlpShape& sh, double lr, double wd) {
  const TransferTable rules = mlp_transfer_table(s, sh, lr, wd);
  const double w = static_cast<double>(sh.width), f = static_cast<double>(sh.ffn);
  const double d_in = static_cast<double>(sh.d_in);
  const double base_w = rules.base.width, base_f = rules.base.ffn_width, base_L = rules.base.depth;
  const bool umup = s.parametrization == Parametrization::UMuP;

  // What the rules leave to the network (transfer() carries the proxy's per-group values; these
  // turn the proxy's settings into them, at the base shape, or at the trial's for the u-μP ops):
  //   init: σ is relative to 1/√fan_in at the base (sp, mup); u-μP's unit init is scaled by σ.
  //   forward multiplier: u-μP's ops apply 1/√fan_in (the readout 1/fan_in) of the trial's shape.
  //   Adam lr: u-μP's optimizer applies fan_in^-1/2 and depth^-1/2 of the base (the rules scale
  //   them to the trial's shape); a dense input layer's fan-in d_in does not grow.
  struct Network {
    const char* rule_group;
    double init_scale, multiplier_scale, lr_scale;
  };
  const double block_lr = umup ? 1 / std::sqrt(base_L) : 1;
  const Network net[kGroups] = {
      {"input/embedding", umup ? s.init_std : 1 / std::sqrt(d_in), umup ? 1 / std::sqrt(d_in) : 1,
       umup ? 1 / std::sqrt(d_in) : 1},
      {"hidden matrices", umup ? s.init_std : 1 / std::sqrt(base_w), umup ? 1 / std::sqrt(w) : 1,
       umup ? block_lr / std::sqrt(base_w) : 1},
      {"FFN down-projection", umup ? s.init_std : 1 / std::sqrt(base_f), umup ? 1 / std::sqrt(f) : 1,
       umup ? block_lr / std::sqrt(base_f) : 1},
      {"norms and biases", 0, 1, block_lr},
      {"final norm", 0, 1, 1},
      {"output/unembedding", umup ? s.init_std : 1 / std::sqrt(base_w), umup ? 1 / w : 1, 1},
  };
  const bool zero_out = s.output_init == MlpOutputInit::Zero ||
                        (s.output_init == MlpOutputInit::Auto && s.parametrization == Parametrization::MuP);

  GroupTable t;
  const double residual = rules.find_group("residual branches")->target.forward_multiplier;
  t.residual = std::isfinite(residual) ? residual : 1.0;  // u-μP: no residual multiplier of its own
  const std::int64_t tensors[kGroups] = {1, sh.depth, sh.depth, sh.depth, 1, 1};
  const std::int64_t params[kGroups] = {
      sh.width * sh.d_in, sh.depth * sh.width * sh.ffn, sh.depth * sh.width * sh.ffn, sh.depth * sh.width,
      sh.width,           sh.classes * sh.width};
  for (int i = 0; i < kGroups; ++i) {
    const GroupValues& v = rules.find_group(net[i].rule_group)->target;
    AppliedGroup& g = t.g[i];
    g.name = kGroupNames[i];
    g.tensors = tensors[i];
    g.params = params[i];
    const bool gain = i == kNorm || i == kFinalNorm;  // RMSNorm gains: constant init 1
    g.init_mean = gain ? 1 : 0;
    g.init_std = gain || (i == kOutput && zero_out) ? 0 : v.init_std * net[i].init_scale;
    g.multiplier = v.forward_multiplier * net[i].multiplier_scale;
    g.lr = v.adam_lr * net[i].lr_scale;
    g.wd = v.weight_decay;
    g.eps = v.adam_eps;
  }
  return t;
}

std::int64_t planned_steps(const TrialPoint& p, const MlpSettings& s) {
  if (p.batch < 1 || p.seq_len < 1 || !(p.tokens > 0))
    throw InputError("mlp: the trial needs batch >= 1, seq_len >= 1 and tokens > 0");
  return std::clamp<std::int64_t>(p.steps(), 1, s.max_steps);
}

}  // namespace mlp_detail

using namespace mlp_detail;

TransferTable mlp_transfer_table(const MlpSettings& s, const MlpShape& shape, double lr, double wd) {
  // SP keeps every hyperparameter, so each trial is its own proxy: base_width and base_depth
  // are μP/u-μP settings, and SP's σ is relative to the trial's own fan-in.
  const bool sp = s.parametrization == Parametrization::SP;
  BaseModel base;
  base.width = sp ? static_cast<double>(shape.width) : s.base_width;
  base.depth = sp ? static_cast<double>(shape.depth) : s.base_depth;
  base.ffn_width =
      static_cast<double>(sp ? shape.ffn : mlp_detail::ffn_width(s, static_cast<std::int64_t>(s.base_width)));
  base.lr = lr;
  base.wd = wd;
  base.norm_bias_wd = 0;  // norm gains are never decayed
  base.init_std = s.init_std;
  base.eps = s.eps;
  base.input_multiplier = s.input_mult;
  base.output_multiplier = s.output_mult;
  base.decoupled_wd = s.wd_mode == MlpWdMode::Decoupled;
  base.input_is_embedding = false;  // a dense d_in -> width projection
  TargetModel target;
  target.width = static_cast<double>(shape.width);
  target.depth = static_cast<double>(shape.depth);
  target.ffn_width = static_cast<double>(shape.ffn);
  TransferOptions options;
  options.param = s.parametrization;
  options.wd_rule = s.wd_width_rule;
  options.depth_alpha = s.depth_alpha;
  return transfer(base, target, options);
}

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

}  // namespace hpsweep
