// What `hpsweep report` shows, computed once from the sweep: the scaling-law fit, the per-cell
// optima, the transfer fit of a width sweep and the latest stored coordinate check.
#include <algorithm>

#include "hpsweep/store/stored_job.hpp"
#include "hpsweep/transfer/coordcheck.hpp"
#include "hpsweep/util/error.hpp"
#include "reports/report_parts.hpp"

namespace hpsweep {

namespace {

// Width sweeps vary the width on purpose: [variants], or the mlp backend.
bool is_width_sweep(const SweepLog& log) {
  if (sweep_variants(log).size() > 1) return true;
  try {
    const std::optional<JobSpec> job = stored_job(log);
    return job && job->backend_kind == "mlp";
  } catch (const InputError&) {  // a stored job that no longer parses: not a width sweep to us
    return false;
  }
}

}  // namespace

SweepStatus status_of(const SweepLog& log, std::string* problem) {
  try {
    return summarize(log);
  } catch (const Error& e) {
    if (problem) *problem = e.what();
    return SweepStatus{};
  }
}

ReportAnalysis analyse_sweep(const SweepLog& log, const FitOptions& fit_options) {
  ReportAnalysis a;
  try {
    a.fit = fit_sweep(log, fit_options);
  } catch (const Error& e) {
    a.fit_error = e.what();
  }
  if (fit_options.variant.empty())
    a.cells = collect_cells(log);
  else
    a.cells = collect_cells(select_variant(log, fit_options.variant));

  if (!is_width_sweep(log)) {
    a.transfer_error = "not a width sweep (no [variants] and not the mlp backend); see jobs/mup-transfer.ini";
  } else {
    try {
      FitOptions t = fit_options;
      t.variant.clear();
      t.transfer = true;
      t.bootstrap.resamples = std::min(t.bootstrap.resamples, 400);
      a.transfer = fit_transfer(log, t);
    } catch (const Error& e) {
      a.transfer_error = e.what();
    }
  }
  for (const auto& f : log.fits)
    if (f.kind == ResultKind::CoordCheck) a.coordcheck = &f;
  return a;
}

ReportInput ReportAnalysis::input(const SweepLog& log, const std::string& sweep_path,
                                  const ReportOptions& options) const {
  return ReportInput{log,
                     sweep_path,
                     options,
                     cells,
                     fit ? &*fit : nullptr,
                     fit_error,
                     transfer ? &*transfer : nullptr,
                     transfer_error,
                     coordcheck};
}

}  // namespace hpsweep
