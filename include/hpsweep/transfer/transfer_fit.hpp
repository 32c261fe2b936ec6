#pragma once
// `hpsweep fit --transfer`: on a sweep over widths, the measured transfer exponents. Per
// parametrization (one [variants] row each, or the whole sweep), the optimal learning rate of
// every width is located on its loss-vs-lr curve (mean over seeds) by the `asym` bowl of the
// scaling-law fit, and eta*(w) = c * w^kappa is fitted by its weighted least squares with
// Student-t intervals; likewise lambda*(w) when weight decay was swept. Theory for Adam's
// hidden-matrix LR: kappa ~ 0 under muP and u-muP, ~ -1 under SP (mup.md).
#include <optional>
#include <string>
#include <vector>

#include "hpsweep/parametrization/rules.hpp"
#include "hpsweep/reducer/fit.hpp"
#include "hpsweep/reducer/laws.hpp"
#include "hpsweep/store/records.hpp"

namespace hpsweep {

// One point of a loss-vs-hyperparameter curve: the mean over seeds of the final loss.
struct CurvePoint {
  double x = 0;     // lr or wd
  double loss = 0;  // mean over the seeds that finished (inf when all diverged)
  std::size_t seeds = 0, diverged = 0;
};

struct WidthOptimum {
  double width = 0, params = 0, tokens = 0;
  double lr = 0, wd = 0, loss = 0;   // the optimum (lr: parabola vertex in ln lr near the argmin)
  Interval lr_boot;                  // 95% interval from the bowl's standard error (estimate = lr)
  bool lr_edge = false;              // argmin at the smallest or largest swept lr
  std::vector<CurvePoint> lr_curve;  // at the best (batch, wd)
  std::vector<CurvePoint> wd_curve;  // at the best (lr, batch), when wd was swept
  std::string note;
};

struct TransferGroup {
  std::string variant;          // "" when the sweep has no [variants]
  std::string parametrization;  // sp | mup | umup for the mlp backend, else the variant name
  double tokens = 0;            // the token budget, when the variant ran several and was split by it
  std::string width_source;     // how widths were obtained
  std::vector<WidthOptimum> widths;
  std::optional<PowerLaw> lr_law, wd_law;  // coefs: c, kappa
  std::string interval_method;             // how the kappa interval was obtained
  double theory_kappa = 0;
  bool has_theory = false;
  std::string verdict;                     // how the measured kappa compares with theory
  std::optional<TransferTable> to_target;  // per-group values at the target width (muP-type groups)
};

struct TransferReport {
  FitOptions options;
  double target_width = 0;
  std::vector<TransferGroup> groups;
  std::vector<std::string> warnings;
};

// Throws Error when no group has 2 widths with an optimum.
// options.target_width: where to carry the optimum (0: the width of the job's [target] params).
TransferReport fit_transfer(const SweepLog& log, const FitOptions& options);
std::string format_transfer_fit(const TransferReport& r);
// "variant mup", "the sweep", "variant sp at D = 1e6".
std::string transfer_group_name(const TransferGroup& g);
std::string transfer_fit_json(const TransferReport& r);
FitRecord to_fit_record(const TransferReport& r, const std::string& name, std::uint64_t results);

}  // namespace hpsweep
