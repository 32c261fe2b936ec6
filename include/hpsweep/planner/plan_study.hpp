#pragma once
// `hpsweep plan JOB.ini`: the adaptive policy run against the job's own backend (the surrogate,
// or a lookup table) in virtual time: rounds complete in order, nothing sleeps. For each budget
// it reports the compute spent, the width of the target's 95% prediction intervals and their
// error against the full grid's fit (and the surrogate's truth), beside a uniform random subset
// of the grid with the same compute.
#include <optional>
#include <string>
#include <vector>

#include "hpsweep/planner/planner.hpp"
#include "hpsweep/reports/report.hpp"

namespace hpsweep {

struct PlanStudyRow {
  std::string strategy;         // "adaptive", "uniform random", "full grid"
  double budget = 0;            // the fraction asked for
  double compute_fraction = 0;  // of the grid's compute, spent
  std::size_t trials = 0;
  std::size_t rounds = 0;  // adaptive only
  PlanEstimate estimate;
  // |estimate / reference - 1| at the target, against the full grid's fit and the truth.
  double lr_error = 0, batch_error = 0;
  double lr_truth_error = 0, batch_truth_error = 0;
};

struct PlanStudy {
  std::string job_name, backend;
  double target_params = 0, target_tokens = 0;
  double grid_compute = 0;
  std::size_t grid_trials = 0;
  PlanEstimate full;                            // the full grid's fit
  std::optional<double> truth_lr, truth_batch;  // the surrogate's own optimum at the target
  std::vector<PlanStudyRow> rows;
  std::vector<PlanRound> rounds;  // the plan at the job's own budget
  double job_budget = 0;
  bool stored = false;  // a stored sweep's plan (stored_plan_study): one adaptive row, no full grid
};

// `budgets`: fractions of the grid's compute; empty: the job's own budget only.
PlanStudy run_plan_study(const JobSpec& job, const std::vector<double>& budgets);
std::string format_plan_study(const PlanStudy& study, bool list_rounds);
// The study as a report section (`hpsweep plan JOB.ini --report DIR`): the table, and for lr and
// B a figure of the target's 95% prediction interval against the compute spent: the plan's rounds
// at the job's budget (each round's estimate against the compute of the results it saw), the
// adaptive plan and the uniform random subset at every budget, the full grid and the truth.
// `listing` is the text shown above the figures (format_plan_study or format_stored_plan).
ReportSection plan_report_section(const PlanStudy& study, const std::string& listing);

// The plan of a stored adaptive sweep, recomputed from its job and results: what the planner
// chose, round by round, and why.
std::string format_stored_plan(const SweepLog& log, const std::string& sweep_path);
// The same as a study for plan_report_section: the rounds, and the fit on every result of the plan
// (the adaptive row). Throws InputError when the sweep is not adaptive.
PlanStudy stored_plan_study(const SweepLog& log, const std::string& sweep_path);

}  // namespace hpsweep
