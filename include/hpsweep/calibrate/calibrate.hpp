#pragma once
// `hpsweep calibrate`: a coverage study of the fit on one sweep design. Replicate sweeps of
// exactly that design (every trial point: grid, cells, repeats) are simulated from ground
// truths with known laws, each is fitted with the chosen options, and the bias, RMSE and
// coverage of the 95% intervals are measured for the coefficients and for the target.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hpsweep/backends/surrogate.hpp"
#include "hpsweep/reducer/fit.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/store/records.hpp"

namespace hpsweep {

struct CalibrationDesign {
  std::string source;              // the job or sweep file it came from
  std::vector<TrialPoint> points;  // one simulated trial per point
  double target_params = 7e9, target_tokens = 1.4e12;
  std::int64_t seq_len = 2048;
  std::size_t cells = 0;
};
// Every trial point of the job's grid (all variants' rows are fitted as one: use single-variant jobs).
CalibrationDesign design_from_job(const JobSpec& job, const std::string& source);
// Every trial point recorded in the sweep, whatever its outcome.
CalibrationDesign design_from_sweep(const SweepLog& log, const std::string& source);

// A landscape with known optima: the surrogate's (Step Law laws) without weight-decay penalty,
//   L = (E + A/N^alpha + B/D^beta) (1 + penalty(x, y)) (1 + noise z),   x = ln(lr/lr*), y = ln(B/B*),
//   penalty = c x^2 (1 + asymmetry [x > 0]) + c cubic [x > 0] x^3 + c_B y^2,
// trials past the surrogate's divergence limit are DIVERGED.
struct GroundTruth {
  std::string name;
  SurrogateParams params;  // laws, curvatures, lr_high_asymmetry; noise is set per condition
  double lr_high_cubic = 0;
  // A truth fitted to a sweep carries the noise measured there: its one condition unless noise
  // levels are given explicitly (CalibrationOptions::noises_given).
  std::optional<double> measured_noise;
  double expected_loss(double n, double d, double lr, double batch_tokens) const;
};
// symmetric, asymmetric (2:1 curvature above/below), cubic (c x^2 + c x^3 above the optimum).
std::vector<GroundTruth> standard_truths();
GroundTruth truth_by_name(const std::string& name);  // Throws InputError
// The landscape fitted to a sweep: its lr and batch laws, its loss law when determined, the cells'
// median curvatures and residual noise, and the lr shape the cells share ("fitted") or a
// symmetric one ("fitted-symmetric"). Throws InputError when the fit has no lr or batch law.
GroundTruth fitted_truth(const FitReport& fit, bool symmetric);

struct CalibrationOptions {
  FitOptions fit;  // loss law and hold-out are switched off for the study
  int replicates = 100;
  std::vector<double> noises = {0.001, 0.0015, 0.003, 0.005};
  bool noises_given = false;  // also for truths with a measured noise
  std::vector<GroundTruth> truths = standard_truths();
  std::uint64_t seed = 0;
};

struct QuantityStats {
  std::string name;
  double truth = 0;
  double bias = 0, rmse = 0, coverage = 0, mean_width = 0;  // coverage of the 95% interval, 0..1
  std::size_t fits = 0;                                     // replicates where it was estimated
};

struct CalibrationCondition {
  std::string truth;
  double noise = 0;
  std::vector<QuantityStats> stats;
  std::size_t failed = 0;  // replicates whose fit threw
};

struct CalibrationReport {
  CalibrationDesign design;
  std::string selection;
  int replicates = 0, resamples = 0;
  std::vector<CalibrationCondition> conditions;
};

// Deterministic for a given seed, whatever the number of threads.
CalibrationReport calibrate(const CalibrationDesign& design, const CalibrationOptions& options);

}  // namespace hpsweep
