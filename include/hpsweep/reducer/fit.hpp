#pragma once
// `hpsweep fit`: per-cell optima -> Step Law (lr in N and D, B in D), compute-form laws, the
// weight-decay timescale law and the loss law, with bootstrap intervals, a prediction for the
// target scale, warnings and an optional hold-out validation.
#include <optional>
#include <string>
#include <vector>

#include "hpsweep/reducer/cells.hpp"
#include "hpsweep/reducer/laws.hpp"
#include "hpsweep/store/records.hpp"

namespace hpsweep {

struct FitOptions {
  Selection selection;
  BootstrapOptions bootstrap;
  bool batch_n_term = false;                    // log B = b + gamma log D + delta log N
  double flops_per_token = 0;                   // compute form: C = M * D; 0 means C = 6 N D
  double target_params = 0, target_tokens = 0;  // 0: from the stored job's [target]
  std::int64_t seq_len = 0;                     // 0: from the data
  bool holdout_largest = false;
  std::string variant;       // fit only this [variants] row ("" : the sweep must have at most one)
  bool transfer = false;     // a transfer-exponent fit (transfer_fit.hpp) rather than the scaling laws
  double target_width = 0;   // transfer: width to carry the optimum to (0: from the job's [target])
  bool loss_law = true;      // false: skip the loss law (coverage studies)
  std::string text() const;  // canonical options, stored with the fit (exact: replay re-fits from it)
  static FitOptions parse(const std::string& text);
};

struct Prediction {
  // lr, batch_tokens: the law's value with its 95% confidence interval; *_prediction: the 95%
  // prediction interval of the target's optimum (adds the scatter of cell optima about the law).
  Interval lr, batch_tokens, wd, loss;
  Interval lr_prediction, batch_prediction;
  double batch_sequences = 0;
  bool has_wd = false, has_loss = false;
};

struct HoldoutCell {
  double params = 0, tokens = 0;
  double predicted_lr = 0, predicted_batch = 0;
  double best_loss = 0, loss_at_prediction = 0, gap = 0;  // gap = loss_at_prediction / best - 1
  bool in_plateau = false;
  std::string method;
};

struct PublishedLaw {
  std::string name;
  double lr = 0, batch_tokens = 0;
};

struct FitReport {
  FitOptions options;
  std::size_t trials_used = 0;
  std::vector<CellOptimum> optima;
  std::vector<std::string> skipped_cells;
  std::optional<PowerLaw> lr_law, batch_law, lr_compute, batch_compute, tau_law;
  std::string tau_note;
  LossLaw loss_law;
  double target_params = 0, target_tokens = 0;
  std::int64_t seq_len = 2048;
  std::optional<Prediction> prediction;
  std::vector<PublishedLaw> published;  // at the target
  std::vector<HoldoutCell> holdout;
  std::vector<std::string> warnings;
};

// The distinct [variants] names of the recorded trials ("" for trials without one), sorted.
std::vector<std::string> sweep_variants(const SweepLog& log);
// The log restricted to one variant's trials. Throws InputError naming the variants there are.
SweepLog select_variant(const SweepLog& log, const std::string& variant);

// The lr and batch-size laws over the cells' optima, as `fit` fits them: a term whose regressor
// barely varies is dropped (with a warning), weighted least squares for asym, bootstrap otherwise.
// The adaptive planner refits them every round.
struct LrBatchLaws {
  std::optional<PowerLaw> lr, batch;
};
LrBatchLaws fit_lr_batch_laws(const std::vector<CellOptimum>& optima, const FitOptions& options,
                              std::vector<std::string>* warnings = nullptr);

// Throws Error when nothing can be fitted (fewer than 2 usable cells), InputError when the sweep
// mixes variants and options.variant does not pick one.
FitReport fit_sweep(const SweepLog& log, const FitOptions& options);
// The same on cells already collected (one variant), for a target and sequence length.
FitReport fit_cells(const std::vector<Cell>& cells, const FitOptions& options, double target_params,
                    double target_tokens, std::int64_t seq_len);

// Published laws, usable without any sweep.
double steplaw_lr(double N, double D);
double steplaw_batch_tokens(double D);
double deepseek_lr(double C);
double deepseek_batch_tokens(double C);

}  // namespace hpsweep
