#include "hpsweep/parametrization/rules.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

Parametrization parse_parametrization(const std::string& name) {
  const std::string n = to_lower(trim(name));
  if (n == "sp" || n == "standard") return Parametrization::SP;
  if (n == "mup" || n == "μp") return Parametrization::MuP;
  if (n == "umup" || n == "u-mup" || n == "u-μp") return Parametrization::UMuP;
  const std::string guess = closest_match(n, {"sp", "mup", "umup"});
  throw InputError("unknown parametrization '" + name + "' (expected sp, mup or umup)" +
                   (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
}

WdRule parse_wd_rule(const std::string& name) {
  const std::string n = to_lower(trim(name));
  if (n == "none" || n == "unchanged") return WdRule::Unchanged;
  if (n == "linear") return WdRule::Linear;
  if (n == "sqrt") return WdRule::Sqrt;
  const std::string guess = closest_match(n, {"none", "linear", "sqrt"});
  throw InputError("unknown weight-decay rule '" + name + "' (expected none, linear or sqrt)" +
                   (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
}

const char* to_string(Parametrization p) {
  switch (p) {
    case Parametrization::SP:
      return "sp";
    case Parametrization::MuP:
      return "mup";
    case Parametrization::UMuP:
      return "umup";
  }
  return "?";
}

const char* to_string(WdRule r) {
  switch (r) {
    case WdRule::Unchanged:
      return "none";
    case WdRule::Linear:
      return "linear";
    case WdRule::Sqrt:
      return "sqrt";
  }
  return "?";
}

const GroupHyperparameters* TransferTable::find_group(std::string_view name) const {
  for (const auto& g : groups)
    if (g.group == name) return &g;
  return nullptr;
}

namespace {

constexpr double kNone = std::numeric_limits<double>::quiet_NaN();

enum class Group { Embedding, Hidden, FfnDown, NormsBiases, FinalNorm, Output, AttentionLogits, Residual };

const char* group_name(Group g) {
  switch (g) {
    case Group::Embedding:
      return "input/embedding";
    case Group::Hidden:
      return "hidden matrices";
    case Group::FfnDown:
      return "FFN down-projection";
    case Group::NormsBiases:
      return "norms and biases";
    case Group::FinalNorm:
      return "final norm";
    case Group::Output:
      return "output/unembedding";
    case Group::AttentionLogits:
      return "attention logits";
    case Group::Residual:
      return "residual branches";
  }
  return "?";
}

// The sizes the rules depend on; the base column is the rule evaluated at the base's own shape.
struct Shape {
  double width, depth, ffn_width, head_dim;
};

struct Ratios {
  double m, m_ffn, m_L;
};

Ratios ratios(const Shape& base, const Shape& at) {
  return {at.width / base.width, at.ffn_width / base.ffn_width, at.depth / base.depth};
}

// λ of a matrix whose Adam LR shrinks with the width ratio r of its fan-in. "linear" keeps the
// coupled-AdamW timescale 1/(η·λ) (Wang & Aitchison); "sqrt" matches top singular values (Fan et al.).
double wd_scale(WdRule rule, double r) {
  switch (rule) {
    case WdRule::Unchanged:
      return 1;
    case WdRule::Linear:
      return r;
    case WdRule::Sqrt:
      return std::sqrt(r);
  }
  return 1;
}

// SP: the proxy's hyperparameters at any size; only the architecture's own 1/√d_head follows the shape.
GroupValues sp_values(Group g, const BaseModel& b, const Shape& at) {
  switch (g) {
    case Group::Embedding:
      return {b.init_std, b.input_multiplier, b.lr, b.wd, b.eps};
    case Group::Hidden:
    case Group::FfnDown:
      return {b.init_std, 1, b.lr, b.wd, b.eps};
    case Group::NormsBiases:
    case Group::FinalNorm:
      return {kNone, 1, b.lr, b.norm_bias_wd, b.eps};
    case Group::Output:
      return {b.init_std, b.output_multiplier, b.lr, b.wd, b.eps};
    case Group::AttentionLogits:
      return {kNone, 1 / std::sqrt(at.head_dim), kNone, kNone, kNone};
    case Group::Residual:
      return {kNone, 1, kNone, kNone, kNone};
  }
  return {};
}

// μP with Adam and a readout multiplier (microsoft/mup), Adam ε as in nanoGPT-mup, and with
// α > 0 the CompleteP/Depth-μP depth rules on top. α = 0 means no depth rule at all, not the
// α = 0 member of the family (which would still rescale the LR by 1/m_L).
GroupValues mup_values(Group g, const BaseModel& b, const TransferOptions& o, const Ratios& r, const Shape& at) {
  const double a = o.depth_alpha;
  const double depth_lr = a > 0 ? std::pow(r.m_L, a - 1) : 1;  // everything inside the blocks
  const double branch = a > 0 ? std::pow(r.m_L, -a) : 1;       // residual multiplier; also the blocks' gradient scale
  const double eps_outer = b.eps / r.m, eps_block = b.eps / r.m * branch;
  switch (g) {
    case Group::Embedding:
      return {b.init_std, b.input_multiplier, b.lr, b.wd, eps_outer};
    case Group::Hidden:
      return {b.init_std / std::sqrt(r.m), 1, b.lr * depth_lr / r.m, b.wd * wd_scale(o.wd_rule, r.m), eps_block};
    // Init and LR follow the fan-in (d_ffn); ε follows the gradient scale, set by the 1/m readout.
    case Group::FfnDown:
      return {b.init_std / std::sqrt(r.m_ffn), 1, b.lr * depth_lr / r.m_ffn, b.wd * wd_scale(o.wd_rule, r.m_ffn),
              eps_block};
    case Group::NormsBiases:
      return {kNone, 1, b.lr * depth_lr, b.norm_bias_wd, eps_block};
    case Group::FinalNorm:
      return {kNone, 1, b.lr, b.norm_bias_wd, eps_outer};
    case Group::Output:
      return {b.init_std, b.output_multiplier / r.m, b.lr, b.wd, eps_outer};
    case Group::AttentionLogits:
      return {kNone, 1 / at.head_dim, kNone, kNone, kNone};
    case Group::Residual:
      return {kNone, branch, kNone, kNone, kNone};
  }
  return {};
}

// u-μP: unit init; Adam LR × fan_in^-1/2 for weights (an embedding's fan-in is its d_model
// side, as unit_scaling.optim counts it), × 1 for norms, biases and the output, × depth^-1/2
// inside the residual branches (Depth-μP). Gradients are unit-scaled, so ε needs no rule. The α
// multipliers are width-free: the unit-scaled ops apply 1/√fan_in, the readout's 1/fan_in,
// attention's 1/d_head and the depth-dependent residual weights from the shapes themselves.
GroupValues umup_values(Group g, const BaseModel& b, const TransferOptions& o, const Ratios& r, const Shape& at) {
  const double depth = 1 / std::sqrt(r.m_L);
  const double input_lr = b.input_is_embedding ? b.lr / std::sqrt(r.m) : b.lr;
  switch (g) {
    case Group::Embedding:
      return {1, b.input_multiplier, input_lr, b.wd, b.eps};
    case Group::Hidden:
      return {1, 1, b.lr / std::sqrt(r.m) * depth, b.wd * wd_scale(o.wd_rule, r.m), b.eps};
    case Group::FfnDown:
      return {1, 1, b.lr / std::sqrt(r.m_ffn) * depth, b.wd * wd_scale(o.wd_rule, r.m_ffn), b.eps};
    case Group::NormsBiases:
      return {kNone, 1, b.lr * depth, b.norm_bias_wd, b.eps};
    case Group::FinalNorm:
      return {kNone, 1, b.lr, b.norm_bias_wd, b.eps};
    case Group::Output:
      return {1, b.output_multiplier, b.lr, b.wd, b.eps};
    case Group::AttentionLogits:
      return {kNone, 1 / at.head_dim, kNone, kNone, kNone};
    case Group::Residual:
      return {kNone, kNone, kNone, kNone, kNone};
  }
  return {};
}

GroupValues values_at(Group g, const BaseModel& b, const TransferOptions& o, const Shape& base, const Shape& at) {
  const Ratios r = ratios(base, at);
  switch (o.param) {
    case Parametrization::SP:
      return sp_values(g, b, at);
    case Parametrization::MuP:
      return mup_values(g, b, o, r, at);
    case Parametrization::UMuP:
      return umup_values(g, b, o, r, at);
  }
  return {};
}

std::string group_note(Group g, const BaseModel& b, const TransferOptions& o) {
  const bool sp = o.param == Parametrization::SP, mup = o.param == Parametrization::MuP;
  const bool depth = mup && o.depth_alpha > 0;
  switch (g) {
    case Group::Embedding:
      if (o.param != Parametrization::UMuP) return "";
      return b.input_is_embedding ? "LR x m^-1/2: an embedding's fan-in is its d_model side (unit_scaling)"
                                  : "dense input layer: fan-in d_in is fixed, so its LR is too";
    case Group::Hidden:
      return "fan-in d_model: attention q/k/v/o, FFN up/gate";
    case Group::FfnDown:
      return sp ? "fan-in d_ffn" : "fan-in d_ffn: init and LR follow m_ffn";
    case Group::NormsBiases:
      return std::string("gains (init 1) and biases (init 0) in the blocks; weight decay usually 0") +
             (depth || o.param == Parametrization::UMuP ? "; LR scaled with depth" : "");
    case Group::FinalNorm:
      return "before the unembedding; no depth rule";
    case Group::Output:
      if (mup) return "zero init recommended; logits x alpha_out*base_width/width (MuReadout)";
      if (o.param == Parametrization::UMuP) return "the u-muP readout applies 1/fan_in from the shape";
      return "";
    case Group::AttentionLogits:
      if (sp) return "q.k/sqrt(d_head)";
      if (mup) return "q.k/d_head instead of /sqrt(d_head); W_q zero init recommended";
      return "q.k/d_head (as muP), applied by u-muP's attention op";
    case Group::Residual:
      if (o.param == Parametrization::UMuP) return "weights set from the depth by u-muP's residual ops";
      if (depth) return "branch output x m_L^-alpha, alpha = " + format_double(o.depth_alpha);
      return "no depth scaling";
  }
  return "";
}

void require_size(double v, const std::string& what) {
  if (!(std::isfinite(v) && v >= 1 && v == std::floor(v)))
    throw InputError(what + " must be a positive whole number (got " + format_double(v) + ")");
}

void require_optional_size(double v, const std::string& what) {
  if (v != 0) require_size(v, what + " (0 for the default)");
}

void require_positive(double v, const std::string& what) {
  if (!(std::isfinite(v) && v > 0)) throw InputError(what + " must be positive (got " + format_double(v) + ")");
}

void require_non_negative(double v, const std::string& what) {
  if (!(std::isfinite(v) && v >= 0))
    throw InputError(what + " must be zero or positive (got " + format_double(v) + ")");
}

void validate(const BaseModel& b, const TargetModel& t, const TransferOptions& o) {
  require_size(b.width, "base width");
  require_size(b.depth, "base depth");
  require_optional_size(b.ffn_width, "base ffn width");
  require_optional_size(b.attention_head_dim, "base attention head dim");
  require_size(t.width, "target width");
  require_optional_size(t.depth, "target depth");
  require_optional_size(t.ffn_width, "target ffn width");
  require_optional_size(t.attention_head_dim, "target attention head dim");
  if (t.attention_head_dim > 0 && b.attention_head_dim == 0)
    throw InputError("target attention head dim given without the base's: the logit scale needs both");
  if (b.attention_head_dim > b.width)
    throw InputError("base attention head dim " + format_double(b.attention_head_dim) + " exceeds the base width " +
                     format_double(b.width));
  if (t.attention_head_dim > t.width)
    throw InputError("target attention head dim " + format_double(t.attention_head_dim) + " exceeds the target width " +
                     format_double(t.width));
  require_positive(b.lr, "base learning rate");
  require_non_negative(b.wd, "base weight decay");
  require_non_negative(b.norm_bias_wd, "base weight decay of norms and biases");
  require_positive(b.init_std, "base init std");
  require_non_negative(b.eps, "base Adam epsilon");
  require_positive(b.input_multiplier, "base input multiplier");
  require_positive(b.output_multiplier, "base output multiplier");

  const double a = o.depth_alpha;
  if (!(a == 0 || (a >= 0.5 && a <= 1)))
    throw InputError("depth alpha must be 0 (no depth scaling) or in [0.5, 1] (0.5 Depth-muP, 1 CompleteP); got " +
                     format_double(a));
  if (o.param == Parametrization::SP && a != 0)
    throw InputError("depth alpha " + format_double(a) +
                     " is a muP depth rule; SP keeps every hyperparameter (use mup)");
  if (o.param == Parametrization::UMuP && a != 0)
    throw InputError("depth alpha " + format_double(a) +
                     " applies to mup only; u-muP has its own depth rule (LR x depth^-1/2, as Depth-muP)");
  if (o.param == Parametrization::SP && o.wd_rule != WdRule::Unchanged)
    throw InputError(std::string("weight-decay rule '") + to_string(o.wd_rule) +
                     "' scales lambda against muP's hidden LR; SP keeps every hyperparameter (use none)");
}

std::string wd_rule_note(const TransferOptions& o) {
  switch (o.wd_rule) {
    case WdRule::Unchanged:
      return "weight decay rule 'none': lambda of hidden matrices unchanged";
    case WdRule::Linear:
      return "weight decay rule 'linear': lambda_hidden x m, keeps the coupled-AdamW timescale 1/(eta*lambda) "
             "(Wang & Aitchison 2025); Fan et al. (arXiv 2510.15262) argue for 'sqrt' instead";
    case WdRule::Sqrt:
      return "weight decay rule 'sqrt': lambda_hidden x sqrt(m), matches top singular values (Fan et al., "
             "arXiv 2510.15262); Wang & Aitchison 2025 argue for 'linear' instead";
  }
  return "";
}

std::vector<std::string> table_notes(const TransferTable& t) {
  const TransferOptions& o = t.options;
  const BaseModel& b = t.base;
  std::vector<std::string> notes;
  switch (o.param) {
    case Parametrization::SP:
      notes.push_back(
          "SP copies the proxy's hyperparameters; they are not expected to transfer (with Adam the optimal hidden LR "
          "falls ~1/width under SP)");
      break;
    case Parametrization::MuP:
      notes.push_back(
          "muP (Adam): verify with an LR sweep at two widths; a passing coord check is not sufficient (mup#22)");
      break;
    case Parametrization::UMuP:
      notes.push_back(
          "u-muP: LRs are relative to the proxy's per-group LRs; unit_scaling.optim applies fan_in^-1/2 and "
          "depth^-1/2 from the shapes itself, so with it keep the global LR unchanged");
      break;
  }
  if (o.param != Parametrization::SP) notes.push_back(wd_rule_note(o));
  if (b.decoupled_wd && o.param != Parametrization::SP)
    notes.push_back(
        "decoupled weight decay (lambda applied without eta): the timescale is 1/lambda, so preserving it means "
        "'none'; the 'linear' argument assumes coupled AdamW (mup#1, PR #73)");
  if (o.param == Parametrization::UMuP && o.wd_rule == WdRule::Linear && !b.decoupled_wd)
    notes.push_back("u-muP's hidden LR falls as m^-1/2, so the coupled timescale is kept by 'sqrt', not 'linear'");
  if (o.param == Parametrization::MuP && o.depth_alpha > 0 && o.wd_rule != WdRule::Linear)
    notes.push_back(
        "CompleteP's reference implementation (nanoGPT-mup) pairs depth scaling with 'linear' (lambda x m)");
  if (o.param == Parametrization::MuP && o.depth_alpha == 0 && t.depth_ratio != 1)
    notes.push_back("depth changes (m_L = " + format_short(t.depth_ratio, 4) +
                    ") without a depth rule: muP alone does not transfer across depth (depth alpha 1: CompleteP)");
  if (o.param != Parametrization::SP && t.ffn_ratio != t.width_ratio)
    notes.push_back("d_ffn scales by m_ffn = " + format_short(t.ffn_ratio, 4) +
                    ", not m = " + format_short(t.width_ratio, 4) + ": the FFN down-projection follows m_ffn");
  return notes;
}

}  // namespace

TransferTable transfer(const BaseModel& base, const TargetModel& target, const TransferOptions& options) {
  validate(base, target, options);
  TransferTable t;
  t.options = options;
  t.base = base;
  if (t.base.ffn_width == 0) t.base.ffn_width = 4 * base.width;
  t.target = target;
  if (t.target.depth == 0) t.target.depth = base.depth;
  // Keeping the proxy's ffn/width ratio is what "the same architecture, wider" means.
  if (t.target.ffn_width == 0) t.target.ffn_width = t.base.ffn_width * target.width / base.width;
  if (t.target.attention_head_dim == 0) t.target.attention_head_dim = base.attention_head_dim;

  const Shape at_base{t.base.width, t.base.depth, t.base.ffn_width, t.base.attention_head_dim};
  const Shape at_target{t.target.width, t.target.depth, t.target.ffn_width, t.target.attention_head_dim};
  const Ratios r = ratios(at_base, at_target);
  t.width_ratio = r.m;
  t.depth_ratio = r.m_L;
  t.ffn_ratio = r.m_ffn;

  std::vector<Group> groups = {Group::Embedding,   Group::Hidden,    Group::FfnDown,
                               Group::NormsBiases, Group::FinalNorm, Group::Output};
  if (base.attention_head_dim > 0) groups.push_back(Group::AttentionLogits);
  groups.push_back(Group::Residual);
  for (Group g : groups)
    t.groups.push_back(GroupHyperparameters{group_name(g), values_at(g, t.base, options, at_base, at_base),
                                            values_at(g, t.base, options, at_base, at_target),
                                            group_note(g, t.base, options)});
  t.notes = table_notes(t);
  return t;
}

}  // namespace hpsweep
