#pragma once
// Internal to the mlp backend (src/backends/mlp/): the parameter groups and their per-trial
// hyperparameters, shared by settings.cpp, network.hpp and training.cpp.
#include <cstdint>

#include "hpsweep/backends/mlp.hpp"

namespace hpsweep::mlp_detail {

enum Group { kInput = 0, kW1, kW2, kNorm, kFinalNorm, kOutput, kGroups };
inline constexpr const char* kGroupNames[kGroups] = {"input",       "hidden.w1",  "hidden.w2",
                                                     "hidden.norm", "final_norm", "output"};

// The parametrization's table (mlp.hpp) evaluated for one shape, lr and wd.
struct GroupTable {
  AppliedGroup g[kGroups];
  double residual = 1;
};

// FFN width of a network of `width`: round(ffn_mult * width), at least 1.
std::int64_t ffn_width(const MlpSettings& s, std::int64_t width);

// transfer()'s rules (mlp_transfer_table) turned into what the network applies.
GroupTable group_table(const MlpSettings& s, const MlpShape& sh, double lr, double wd);

// The steps a trial runs: min(ceil(D / (batch * seq_len)), max_steps).
std::int64_t planned_steps(const TrialPoint& p, const MlpSettings& s);

}  // namespace hpsweep::mlp_detail
