#pragma once
// The per-group rules behind `hpsweep transfer` and the mlp backend's parametrizations: carry
// hyperparameters tuned on a small proxy to a wider and/or deeper target, per parameter group,
// under SP, μP (Adam) or u-μP, with a chosen weight-decay rule and optional depth scaling.
// Sources: Tensor Programs V and microsoft/mup (μP with a readout multiplier), nanoGPT-mup (Adam
// ε, CompleteP groups), u-μP (Blake et al. 2024, unit_scaling), Depth-μP (arXiv 2310.02244),
// CompleteP (arXiv 2505.01618).
//
// Every rule is a product of powers of the shape ratios (m = width ratio, m_ffn, m_L = depth
// ratio), so it is the identity when the target has the base's shape. Presentation (the table
// and the JSON that `hpsweep transfer` prints) lives in transfer/format.hpp.
#include <string>
#include <string_view>
#include <vector>

namespace hpsweep {

enum class Parametrization { SP, MuP, UMuP };  // "sp", "mup", "umup"
// Scaling of the hidden matrices' weight decay with their width ratio m.
enum class WdRule { Unchanged, Linear, Sqrt };  // "none", "linear" (λ ∝ m), "sqrt" (λ ∝ √m)

// InputError naming the accepted values, with a "did you mean" when the name reads as a typo.
Parametrization parse_parametrization(const std::string& name);
WdRule parse_wd_rule(const std::string& name);
const char* to_string(Parametrization p);
const char* to_string(WdRule r);

// The proxy whose hyperparameters were tuned.
struct BaseModel {
  double width = 256, depth = 4;  // d_model, number of blocks
  double lr = 1e-3, wd = 0.1, init_std = 0.02, eps = 1e-8;
  double input_multiplier = 1, output_multiplier = 1;  // α_in, α_out (μP readout multiplier)
  // Weight decay of norm gains and biases. 0 is the usual choice (Wang & Aitchison,
  // nanoGPT-mup); no width rule scales it, so whatever the proxy used is carried over unchanged.
  double norm_bias_wd = 0;
  bool decoupled_wd = false;      // λ applied without η (not PyTorch AdamW's η·λ): see the notes
  double ffn_width = 0;           // 0: 4 * width
  double attention_head_dim = 0;  // 0: no attention logits row
  // false: a dense input layer (fan-in d_in, fixed), as in the mlp proxy. Only u-μP cares: it
  // scales an embedding's LR by its d_model side but a dense layer's by its fixed fan-in.
  bool input_is_embedding = true;
};

// 0 means "as the base": depth 0 keeps the base depth, ffn_width 0 keeps the base's ffn/width
// ratio, attention_head_dim 0 keeps the base head dim (width grows by adding heads).
struct TargetModel {
  double width = 0, depth = 0, ffn_width = 0, attention_head_dim = 0;
};

struct TransferOptions {
  Parametrization param = Parametrization::MuP;
  WdRule wd_rule = WdRule::Unchanged;
  // Residual branch exponent: 0 = no depth scaling, 0.5 = Depth-μP, 1 = CompleteP; valid: 0 or
  // [0.5, 1], and only under μP (u-μP has its own depth rule, SP none).
  double depth_alpha = 0;
};

// One group's settings. NaN = not a setting of this group (JSON null, "-" in the table), e.g.
// the LR of the "attention logits" row, whose W_q and W_k are hidden matrices.
struct GroupValues {
  double init_std, forward_multiplier, adam_lr, weight_decay, adam_eps;
};

struct GroupHyperparameters {
  // "input/embedding", "hidden matrices" (fan-in d_model), "FFN down-projection" (fan-in d_ffn),
  // "norms and biases" (in the blocks), "final norm", "output/unembedding", "attention logits"
  // (only with a head dim), "residual branches" (the branch multiplier).
  std::string group;
  GroupValues base, target;  // the rule at the base's shape and at the target's
  std::string note;
};

struct TransferTable {
  TransferOptions options;
  BaseModel base;      // ffn_width resolved (never 0)
  TargetModel target;  // every 0 resolved to the size actually used
  double width_ratio = 1, depth_ratio = 1, ffn_ratio = 1;
  std::vector<GroupHyperparameters> groups;
  std::vector<std::string> notes;  // the rules used, their sources, and warnings

  const GroupHyperparameters* find_group(std::string_view name) const;  // nullptr when absent
};

// InputError on sizes that are not positive whole numbers, hyperparameters out of range,
// depth_alpha outside {0} ∪ [0.5, 1], and options the parametrization does not have.
TransferTable transfer(const BaseModel& base, const TargetModel& target, const TransferOptions& options);

}  // namespace hpsweep
